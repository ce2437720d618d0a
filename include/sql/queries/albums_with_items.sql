SELECT g.id, g.channel_id, c.username, g.grouped_id, g.album_kind, g.items_count, g.caption_text,
       g.status, g.content_hash, g.meta, g.posted_at,
       array_agg(i.message_id ORDER BY i.position) AS message_ids,
       array_agg(i.media_kind ORDER BY i.position) AS media_kinds,
       array_agg(i.position ORDER BY i.position) AS positions
FROM media_groups g
JOIN channels c ON c.id = g.channel_id
LEFT JOIN media_group_items i ON i.group_id = g.id
GROUP BY g.id, c.username
ORDER BY g.id;
