-- Time a pull read whole joins the channel's covered history (ranges that touch merge).
UPDATE channels
SET covered = covered + tstzmultirange(tstzrange(%(start)s, %(end)s, %(bounds)s))
WHERE id = %(channel_id)s;
