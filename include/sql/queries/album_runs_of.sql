-- The most recent runs whose enrich task published each of these albums, newest first.
SELECT album_id, dag_id, run_id, task_id, map_index, outcome, at
FROM (SELECT r.*, row_number() OVER (PARTITION BY album_id ORDER BY at DESC) AS n
      FROM album_runs r
      WHERE album_id = ANY(%(album_ids)s) AND outcome = 'published') recent
WHERE n <= %(per_album)s
ORDER BY album_id, at DESC;
