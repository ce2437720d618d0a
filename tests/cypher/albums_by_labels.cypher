// Albums carrying all the requested labels. Parameters: $labels (lower-case), $limit
MATCH (a:Album)-[:LABELED]->(l:Label)
WHERE l.name IN $labels
WITH a, count(DISTINCT l) AS matching_labels
WHERE matching_labels = size($labels)
RETURN a.album_id AS album_id, a.grouped_id AS grouped_id, a.album_kind AS album_kind,
       a.items_count AS items_count, matching_labels, a.caption_text AS caption_text
ORDER BY matching_labels DESC, a.posted_at DESC, a.album_id DESC
LIMIT $limit
