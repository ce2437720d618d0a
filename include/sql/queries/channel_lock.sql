-- Serialise writers of one channel (scheduled and backfill runs may overlap).
SELECT pg_advisory_xact_lock(hashtext('telegram_albums.channel'), hashtext(%(channel_id)s::text));
