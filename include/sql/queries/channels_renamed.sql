-- Channels renamed since their graph node was last written.
SELECT id, renamed_at FROM channels WHERE renamed_at IS NOT NULL ORDER BY id LIMIT %(limit)s;
