-- album_items_for_vision for a page of albums at once (the albums view, the demo's report), with
-- the fetch still to come of an item's media or preview: its last error, tries and next try.
SELECT i.group_id AS album_id, i.position, i.message_id, i.media_kind, i.sha256, i.thumb_sha256,
       m.mime, m.s3_key, t.s3_key AS thumb_s3_key, p.media_skip_reason,
       coalesce(r.parts @> '{media}', false) AS media_pending,
       coalesce(r.parts @> '{preview}', false) AS preview_pending,
       r.last_error AS retry_error, r.tries AS retry_tries, r.retry_after
FROM media_group_items i
JOIN media_groups g ON g.id = i.group_id
LEFT JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id
LEFT JOIN media_objects m ON m.sha256 = i.sha256
LEFT JOIN media_objects t ON t.sha256 = i.thumb_sha256
LEFT JOIN LATERAL (
    SELECT array_agg(part) AS parts, max(last_error) AS last_error, max(tries) AS tries,
           max(retry_after) AS retry_after
    FROM media_retries
    WHERE channel_id = g.channel_id AND message_id = i.message_id
    HAVING count(*) > 0
) r ON true
WHERE i.group_id = ANY(%(album_ids)s)
ORDER BY i.group_id, i.position;
