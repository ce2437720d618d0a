-- One album's items for its page, in position order: the item's own media (an image, a video,
-- a document) with its type, size and file name, a video's preview, and the latest vision
-- result of the image vision read for it (the photo, or the video's preview). With a position:
-- that item alone (a file the view serves, range by range).
SELECT i.position, i.message_id, i.media_kind, p.text, p.media_mime AS mime, p.media_size AS size,
       p.media_file_name AS file_name, p.media_skip_reason, m.s3_key, m.width, m.height,
       t.s3_key AS thumb_s3_key, v.result AS vision, v.skip_reason AS vision_skip
FROM media_group_items i
JOIN media_groups g ON g.id = i.group_id
LEFT JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id
LEFT JOIN media_objects m ON m.sha256 = i.sha256
LEFT JOIN media_objects t ON t.sha256 = i.thumb_sha256
LEFT JOIN LATERAL (
    SELECT result, skip_reason FROM vision_results
    WHERE sha256 = coalesce(i.thumb_sha256, i.sha256)
    ORDER BY analyzed_at DESC LIMIT 1
) v ON true
WHERE i.group_id = %(album_id)s AND (%(position)s::integer IS NULL OR i.position = %(position)s::integer)
ORDER BY i.position;
