-- Media stored after all (a later try, a re-pull): the skips that said it was not are done.
DELETE FROM ingest_skips
WHERE channel_id = %(channel_id)s AND reason = ANY(%(reasons)s)
  AND ref = ANY(SELECT 'message:' || m FROM unnest(%(message_ids)s::bigint[]) AS m);
