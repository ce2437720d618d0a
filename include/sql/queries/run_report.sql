-- Totals for the run log (counts only).
SELECT
    (SELECT count(*) FROM posts WHERE deleted_at IS NULL)                              AS posts,
    (SELECT count(*) FROM media_objects)                                               AS media_objects,
    (SELECT count(*) FROM media_groups)                                                AS albums,
    (SELECT count(*) FROM media_groups WHERE status = 'assembled')                     AS albums_assembled,
    (SELECT count(*) FROM media_groups WHERE status = 'partial')                       AS albums_partial,
    (SELECT count(*) FROM media_groups WHERE status = 'open')                          AS albums_open,
    (SELECT count(*) FROM vision_results
      WHERE %(since)s::timestamptz IS NULL OR analyzed_at >= %(since)s::timestamptz)   AS vision_calls,
    (SELECT count(*) FROM media_groups WHERE meta -> 'index' IS NOT NULL AND (%(since)s::timestamptz IS NULL
        OR (meta -> 'index' ->> 'indexed_at')::timestamptz >= %(since)s::timestamptz))   AS albums_indexed,
    (SELECT count(*) FROM posts WHERE indexed_at IS NOT NULL AND (%(since)s::timestamptz IS NULL
        OR indexed_at >= %(since)s::timestamptz))                                      AS posts_indexed,
    (SELECT count(*) FROM ingest_skips)                                                AS skips,
    (SELECT coalesce(extract(epoch FROM now() - min(composed_at)), 0)::bigint
       FROM media_groups WHERE status <> 'assembled')                                  AS oldest_pending_seconds;
