UPDATE reindex_passes SET albums_after = %(albums_after)s, posts_after_channel = %(posts_after_channel)s,
    posts_after_message = %(posts_after_message)s, albums_written = %(albums_written)s,
    posts_written = %(posts_written)s
WHERE collection = %(collection)s AND scope = %(scope)s;
