-- Keep the holder's update state (Telethon's pts), for the next listener to start from.
UPDATE telegram_listeners SET update_state = %(state)s
WHERE name = %(name)s AND holder = %(holder)s;
