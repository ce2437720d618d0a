-- Totals for the run log (small: counts only).
SELECT
    (SELECT count(*) FROM posts WHERE deleted_at IS NULL)                     AS posts,
    (SELECT count(*) FROM media_objects)                                      AS media_objects,
    (SELECT count(*) FROM media_groups)                                       AS albums,
    (SELECT count(*) FROM media_groups WHERE id = ANY(%(album_ids)s))         AS albums_this_run,
    (SELECT count(*) FROM media_groups WHERE status = 'open')                 AS albums_open,
    (SELECT count(*) FROM ingest_skips)                                       AS skips;
