// Labels an album no longer has. Parameters: $album_id, $labels
MATCH (a:Album {album_id: $album_id})-[r:LABELED]->(l:Label)
WHERE NOT l.name IN $labels
DELETE r
