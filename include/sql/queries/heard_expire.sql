-- Heard messages no pull took within a day (a channel set aside, a pull failing): the pull asks
-- for what it needs anyway.
DELETE FROM heard_messages WHERE heard_at < now() - interval '1 day';
