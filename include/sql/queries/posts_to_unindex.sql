-- Deleted posts (in albums or not) still in Qdrant / the graph.
SELECT channel_id, message_id FROM posts
WHERE deleted_at IS NOT NULL AND indexed_at IS NOT NULL
ORDER BY channel_id, message_id
LIMIT %(limit)s;
