SELECT id, username, title FROM channels WHERE lower(username) = lower(%(username)s);
