// Albums of a channel, newest first, with expected (items_count) and actual (CONTAINS) item counts.
// Parameters: $channel_id, $limit
MATCH (c:Channel {channel_id: $channel_id})-[:HAS_ALBUM]->(a:Album)
OPTIONAL MATCH (a)-[:CONTAINS]->(p:Post)
WITH a, count(p) AS actual_items
RETURN a.album_id AS album_id, a.grouped_id AS grouped_id, a.album_kind AS album_kind,
       a.items_count AS expected_items, actual_items, a.caption_text AS caption_text, a.posted_at AS posted_at
ORDER BY a.posted_at DESC, a.album_id DESC
LIMIT $limit
