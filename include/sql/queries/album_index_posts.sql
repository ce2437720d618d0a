-- The posts behind an album's items, in position order.
SELECT i.position, p.channel_id, p.message_id, p.text, p.posted_at, p.media_kind
FROM media_group_items i
JOIN media_groups g ON g.id = i.group_id
JOIN posts p ON p.channel_id = g.channel_id AND p.message_id = i.message_id
WHERE i.group_id = %(album_id)s AND p.deleted_at IS NULL
ORDER BY i.position;
