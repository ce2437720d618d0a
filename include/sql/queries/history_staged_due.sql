-- The kept messages a day's import stores as posts: those dated in the day, those of albums
-- that have a member in it or among the given ones.
SELECT message_id, message, fetched_at
FROM history_staged
WHERE channel_id = %(channel_id)s
  AND ((posted_at >= %(start)s AND posted_at < %(end)s)
       OR grouped_id = ANY(%(grouped_ids)s)
       OR grouped_id IN (SELECT grouped_id FROM history_staged
                         WHERE channel_id = %(channel_id)s AND posted_at >= %(start)s AND posted_at < %(end)s
                           AND grouped_id IS NOT NULL))
ORDER BY message_id;
