-- A run's task touched these albums (the albums view links an album to its runs from here).
INSERT INTO album_runs (album_id, dag_id, run_id, task_id, map_index, outcome)
SELECT album_id, %(dag_id)s, %(run_id)s, %(task_id)s, %(map_index)s, outcome
FROM unnest(%(album_ids)s::bigint[], %(outcomes)s::text[]) AS touched(album_id, outcome)
ON CONFLICT (album_id, dag_id, run_id, task_id) DO UPDATE
SET map_index = EXCLUDED.map_index, outcome = EXCLUDED.outcome, at = now();
