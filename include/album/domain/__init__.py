"""Records and rules, pure: albums from messages, the album summary, work units, settings. No I/O."""
