-- Every channel with its state, and its media: still to fetch again (how many, the next try,
-- the last error) and given up (terminal skips of downloads).
SELECT c.id, c.username, c.title, c.is_active, c.state, c.state_reason, c.state_since, c.hwm, c.top_message,
       c.in_dialogs, c.flood_wait_until, c.last_pulled_at, c.last_error, c.last_error_at, c.failures,
       coalesce(array_agg(s.tenant_id ORDER BY s.tenant_id) FILTER (WHERE s.tenant_id IS NOT NULL), '{}') AS tenants,
       retry.waiting AS media_waiting, retry.next_try AS media_next_try, retry.last_error AS media_last_error,
       retry.tries AS media_tries,
       (SELECT count(*) FROM posts p WHERE p.channel_id = c.id AND p.deleted_at IS NULL
          AND p.media_skip_reason IN ('download_failed', 'media_gone')) AS media_given_up,
       -- how far back the stored history reaches (NULL with history_from_start: the first message)
       CASE WHEN isempty(c.covered) OR lower_inf(c.covered) THEN NULL ELSE lower(c.covered) END AS history_from,
       (NOT isempty(c.covered) AND lower_inf(c.covered)) AS history_from_start,
       CASE WHEN isempty(c.history_requested) THEN NULL ELSE lower(c.history_requested) END AS import_from,
       CASE WHEN isempty(c.history_requested) THEN NULL ELSE upper(c.history_requested) END AS import_to,
       (SELECT coalesce(sum(upper(r) - lower(r)), interval '0') FROM unnest(c.history_requested - c.covered) r)
           AS import_left
FROM channels c
LEFT JOIN subscriptions s ON s.channel_id = c.id
LEFT JOIN LATERAL (
    SELECT count(*) AS waiting, min(retry_after) AS next_try, max(tries) AS tries,
           (array_agg(last_error ORDER BY last_failed_at DESC))[1] AS last_error
    FROM media_retries r
    WHERE r.channel_id = c.id
) retry ON true
GROUP BY c.id, retry.waiting, retry.next_try, retry.last_error, retry.tries
ORDER BY c.id;
