-- Held until the transaction ends by whoever writes an album's enrichment or index (each DAG,
-- each worker), taken in id order so two writers of several albums never deadlock.
SELECT pg_advisory_xact_lock(hashtext('telegram_albums.album'), hashtext(ordered.id::text))
FROM (SELECT id FROM unnest(%(album_ids)s::bigint[]) AS id ORDER BY id) AS ordered;
