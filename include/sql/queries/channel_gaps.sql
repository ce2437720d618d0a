-- What of [start, end) the channel's covered history does not hold yet, oldest first, and
-- whether the time on either side of each gap is covered.
SELECT lower(g) AS start, upper(g) AS end, upper_inc(g) AS end_included,
       (NOT lower_inc(g) OR c.covered @> (lower(g) - interval '1 microsecond')) AS before_covered,
       (upper_inc(g) OR c.covered @> upper(g)) AS after_covered
FROM channels c,
     unnest(tstzmultirange(tstzrange(%(start)s, %(end)s)) - c.covered) AS g
WHERE c.id = %(channel_id)s
ORDER BY lower(g);
