-- Every post of these albums was deleted: tombstone the albums (unpublished by the index step).
UPDATE media_groups SET deleted_at = now(), updated_at = now()
WHERE channel_id = %(channel_id)s AND grouped_id = ANY(%(grouped_ids)s) AND deleted_at IS NULL
RETURNING id;
