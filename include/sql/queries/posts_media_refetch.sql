-- The messages of a channel whose media is fetched again (see media_to_refetch).
SELECT message_id FROM media_to_refetch(%(channel_id)s);
