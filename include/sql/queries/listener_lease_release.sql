-- Give the lease up (a listener stopping): another may take it at once.
UPDATE telegram_listeners SET lease_until = now() - interval '1 second'
WHERE name = %(name)s AND holder = %(holder)s;
