-- Several channels by id, in the order asked for.
SELECT c.id, c.access_hash, c.username, c.title, c.hwm, c.is_active, c.flood_wait_until, c.top_message,
       c.in_dialogs, c.state, EXISTS (SELECT 1 FROM media_to_refetch(c.id)) AS media_pending
FROM unnest(%(channel_ids)s::bigint[]) WITH ORDINALITY AS wanted(id, n)
JOIN channels c ON c.id = wanted.id
ORDER BY wanted.n;
