-- Totals for the run log (counts only).
SELECT
    (SELECT count(*) FROM channels WHERE is_active)                                     AS channels_active,
    (SELECT count(DISTINCT channel_id) FROM posts WHERE deleted_at IS NULL AND (%(since)s::timestamptz IS NULL
        OR ingested_at >= %(since)s::timestamptz))                                      AS channels_with_new_posts,
    (SELECT count(*) FROM posts WHERE deleted_at IS NULL)                               AS posts,
    (SELECT count(*) FROM posts WHERE deleted_at IS NULL AND (%(since)s::timestamptz IS NULL
        OR ingested_at >= %(since)s::timestamptz))                                      AS posts_new,
    (SELECT count(*) FROM media_objects)                                                AS media_objects,
    (SELECT count(*) FROM media_groups WHERE deleted_at IS NULL)                        AS albums,
    (SELECT count(*) FROM media_groups WHERE status = 'assembled' AND deleted_at IS NULL) AS albums_assembled,
    (SELECT count(*) FROM media_groups WHERE status = 'partial' AND deleted_at IS NULL) AS albums_partial,
    (SELECT count(*) FROM media_groups WHERE status = 'open' AND deleted_at IS NULL) AS albums_open,
    (SELECT count(*) FROM vision_results
      WHERE %(since)s::timestamptz IS NULL OR analyzed_at >= %(since)s::timestamptz)   AS vision_calls,
    (SELECT count(*) FROM media_groups WHERE indexed_at IS NOT NULL AND (%(since)s::timestamptz IS NULL
        OR indexed_at >= %(since)s::timestamptz))                                       AS albums_indexed,
    (SELECT count(*) FROM media_groups WHERE deleted_at IS NULL
        AND meta -> 'index' ->> 'has_text' = 'false')                                  AS albums_without_text,
    (SELECT count(*) FROM posts WHERE indexed_at IS NOT NULL AND (%(since)s::timestamptz IS NULL
        OR indexed_at >= %(since)s::timestamptz))                                      AS posts_indexed,
    (SELECT count(*) FROM ingest_skips)                                                 AS skips,
    (SELECT count(*) FROM album_failures f JOIN media_groups g ON g.id = f.album_id
      WHERE f.quarantined_at IS NOT NULL AND f.content_hash = g.content_hash)            AS albums_quarantined,
    (SELECT count(*) FROM media_groups WHERE deleted_at IS NOT NULL)                    AS albums_deleted,
    (SELECT coalesce(extract(epoch FROM now() - min(composed_at)), 0)::bigint
       FROM media_groups WHERE status <> 'assembled' AND deleted_at IS NULL)           AS oldest_pending_seconds,
    (SELECT count(*) FROM channels WHERE is_active AND last_error IS NOT NULL
                                     AND state = 'active')                               AS channels_failing,
    (SELECT count(*) FROM channels WHERE is_active AND flood_wait_until > now())      AS channels_deferred,
    (SELECT count(*) FROM channels WHERE is_active AND state = 'unavailable')         AS channels_unavailable,
    (SELECT count(*) FROM media_retries r JOIN posts p USING (channel_id, message_id)
      WHERE p.deleted_at IS NULL)                                                        AS media_to_refetch;
