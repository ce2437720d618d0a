// Album nodes and their channel. Parameters: $rows = [{album_id, channel_id, grouped_id, album_kind,
// items_count, caption_text, posted_at, status, content_hash}]
UNWIND $rows AS row
MERGE (c:Channel {channel_id: row.channel_id})
MERGE (a:Album {album_id: row.album_id})
SET a.channel_id = row.channel_id, a.grouped_id = row.grouped_id, a.album_kind = row.album_kind,
    a.items_count = row.items_count, a.caption_text = row.caption_text, a.posted_at = row.posted_at,
    a.status = row.status, a.content_hash = row.content_hash
MERGE (c)-[:HAS_ALBUM]->(a)
