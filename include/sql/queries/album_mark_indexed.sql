-- The search index holds this enrichment of the album (only if its composition is still this one).
UPDATE media_groups
SET meta = jsonb_set(meta, '{index}', %(index)s), indexed_version = %(indexed_version)s, indexed_at = %(indexed_at)s
WHERE id = %(album_id)s AND content_hash = %(content_hash)s;
