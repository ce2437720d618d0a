-- Channels renamed since their graph node and Qdrant points were last given their names.
SELECT id, username, title, renamed_at FROM channels WHERE renamed_at IS NOT NULL ORDER BY id LIMIT %(limit)s;
