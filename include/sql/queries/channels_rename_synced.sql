-- The graph has these channels' names as of renamed_at (a rename after that stays pending).
UPDATE channels c
SET renamed_at = NULL
FROM unnest(%(channel_ids)s::bigint[], %(renamed_at)s::timestamptz[]) AS synced(id, renamed_at)
WHERE c.id = synced.id AND c.renamed_at <= synced.renamed_at;
