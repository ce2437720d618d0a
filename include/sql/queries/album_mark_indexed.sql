UPDATE media_groups SET meta = jsonb_set(meta, '{index}', %(index)s)
WHERE id = %(album_id)s AND content_hash = %(content_hash)s;
