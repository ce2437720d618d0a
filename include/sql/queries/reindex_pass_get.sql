SELECT collection, scope, started_at, since, albums_after, posts_after_channel, posts_after_message,
       albums_written, posts_written, finished_at
FROM reindex_passes WHERE collection = %(collection)s AND scope = %(scope)s;
