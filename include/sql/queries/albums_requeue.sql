-- Release quarantined albums (all of them when album_ids is null): the next run processes them.
DELETE FROM album_failures
WHERE quarantined_at IS NOT NULL AND (%(album_ids)s::bigint[] IS NULL OR album_id = ANY(%(album_ids)s::bigint[]))
RETURNING album_id;
