// Albums posted in a window, with their item count (reconciliation). Parameters: $since, $until (ISO)
MATCH (a:Album)
WHERE a.posted_at >= $since AND a.posted_at < $until
OPTIONAL MATCH (a)-[:CONTAINS]->(p:Post)
RETURN a.album_id AS album_id, a.content_hash AS content_hash, count(p) AS items
