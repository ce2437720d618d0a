-- One writer of posts outside albums to the index at a time (telegram_albums' index_posts, the
-- refresh DAG's republish): the second reads what to index after the first has marked its work.
SELECT pg_advisory_xact_lock(hashtext('telegram_albums.loose_posts'), 0);
