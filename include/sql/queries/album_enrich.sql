-- Publish the enrichment only for the composition it was computed from.
UPDATE media_groups
SET meta = jsonb_set(meta, '{enrichment}', %(enrichment)s), status = %(state)s, enriched_hash = content_hash,
    enriched_at = %(enriched_at)s, updated_at = now()
WHERE id = %(album_id)s AND content_hash = %(content_hash)s;
