SELECT g.id, g.channel_id, c.username, g.grouped_id, g.album_kind, g.items_count, g.caption_text, g.posted_at,
       g.content_hash, g.status, g.meta, g.composed_at,
       g.meta -> 'enrichment' ->> 'content_hash' AS enriched_hash,
       g.meta -> 'enrichment' ->> 'assembled_at' AS enriched_at,
       g.meta -> 'index' ->> 'enrichment_assembled_at' AS indexed_for
FROM media_groups g
JOIN channels c ON c.id = g.channel_id
WHERE g.id = %(album_id)s;
