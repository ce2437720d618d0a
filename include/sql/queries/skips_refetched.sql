-- Media stored after all: the skips that said it would be fetched again are done.
DELETE FROM ingest_skips
WHERE channel_id = %(channel_id)s AND reason = %(reason)s
  AND ref = ANY(SELECT 'message:' || m FROM unnest(%(message_ids)s::bigint[]) AS m);
