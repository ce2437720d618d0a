-- A new pass: full (since NULL) or a catch-up since the previous one began.
INSERT INTO reindex_passes AS r (collection, scope, started_at, since)
VALUES (%(collection)s, %(scope)s, now(), %(since)s)
ON CONFLICT (collection, scope) DO UPDATE SET
    started_at = now(), since = EXCLUDED.since, albums_after = 0, posts_after_channel = 0, posts_after_message = 0,
    albums_written = 0, posts_written = 0, finished_at = NULL
RETURNING collection, scope, started_at, since, albums_after, posts_after_channel, posts_after_message,
          albums_written, posts_written, finished_at;
