-- Same album_id forever for (channel_id, grouped_id); a changed composition (or a post of a
-- tombstoned album coming back) re-opens it.
WITH previous AS (
    SELECT content_hash FROM media_groups
    WHERE channel_id = %(channel_id)s AND grouped_id = %(grouped_id)s
)
INSERT INTO media_groups AS g (channel_id, grouped_id, album_kind, items_count, caption_text, posted_at,
                               content_hash, status, meta)
VALUES (%(channel_id)s, %(grouped_id)s, %(album_kind)s, %(items_count)s, %(caption_text)s, %(posted_at)s,
        %(content_hash)s, 'open', %(meta)s)
ON CONFLICT (channel_id, grouped_id) DO UPDATE
SET album_kind = EXCLUDED.album_kind,
    items_count = EXCLUDED.items_count,
    caption_text = EXCLUDED.caption_text,
    posted_at = EXCLUDED.posted_at,
    content_hash = EXCLUDED.content_hash,
    status = 'open',
    meta = g.meta || EXCLUDED.meta,
    composed_at = now(),
    deleted_at = NULL,
    updated_at = now()
WHERE g.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR g.deleted_at IS NOT NULL
RETURNING g.id, g.grouped_id, (SELECT content_hash FROM previous) AS previous_hash;
