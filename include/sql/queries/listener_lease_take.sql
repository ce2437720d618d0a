-- Take the listener's lease, or renew it: granted (a row returned) when nobody holds it, when its
-- holder is the caller, or when the holder let it run out. The update state stays with the row.
INSERT INTO telegram_listeners (name, holder, lease_until, started_at)
VALUES (%(name)s, %(holder)s, now() + make_interval(secs => %(seconds)s), now())
ON CONFLICT (name) DO UPDATE
SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until,
    started_at = CASE WHEN telegram_listeners.holder = EXCLUDED.holder THEN telegram_listeners.started_at
                      ELSE now() END
WHERE telegram_listeners.holder = EXCLUDED.holder OR telegram_listeners.lease_until < now()
RETURNING holder, update_state;
