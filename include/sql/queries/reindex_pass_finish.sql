UPDATE reindex_passes SET finished_at = now() WHERE collection = %(collection)s AND scope = %(scope)s;
