UPDATE media_groups SET meta = meta - 'enrichment' - 'index', status = 'open', updated_at = now()
WHERE id = %(album_id)s AND deleted_at IS NOT NULL;
