-- The album's item posts are in the index with it (so their deletion is propagated later).
UPDATE posts p SET indexed_at = %(indexed_at)s, indexed_version = p.updated_at
FROM media_group_items i JOIN media_groups g ON g.id = i.group_id
WHERE i.group_id = %(album_id)s AND p.channel_id = g.channel_id AND p.message_id = i.message_id
  AND p.indexed_at IS DISTINCT FROM %(indexed_at)s;
