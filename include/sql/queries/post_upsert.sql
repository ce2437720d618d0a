-- Idempotent: a rerun writes nothing when nothing changed; stored media is never forgotten
-- because a later download failed; a version older than the stored one (read by one DAG before
-- the other stored a later edit) never replaces it.
INSERT INTO posts AS p (channel_id, message_id, grouped_id, text, posted_at, edited_at, media_kind,
                        media_file_id, media_mime, media_size, media_file_name, media_sha256, thumb_sha256,
                        media_skip_reason)
VALUES (%(channel_id)s, %(message_id)s, %(grouped_id)s, %(text)s, %(posted_at)s, %(edited_at)s, %(media_kind)s,
        %(media_file_id)s, %(media_mime)s, %(media_size)s, %(media_file_name)s, %(media_sha256)s, %(thumb_sha256)s,
        %(media_skip_reason)s)
ON CONFLICT (channel_id, message_id) DO UPDATE
SET grouped_id = EXCLUDED.grouped_id,
    text = EXCLUDED.text,
    posted_at = EXCLUDED.posted_at,
    edited_at = EXCLUDED.edited_at,
    media_kind = EXCLUDED.media_kind,
    media_file_id = EXCLUDED.media_file_id,
    media_mime = EXCLUDED.media_mime,
    media_size = EXCLUDED.media_size,
    media_file_name = EXCLUDED.media_file_name,
    media_sha256 = coalesce(EXCLUDED.media_sha256, p.media_sha256),
    thumb_sha256 = coalesce(EXCLUDED.thumb_sha256, p.thumb_sha256),
    media_skip_reason = CASE WHEN coalesce(EXCLUDED.media_sha256, p.media_sha256) IS NOT NULL THEN NULL
                             ELSE EXCLUDED.media_skip_reason END,
    deleted_at = NULL,
    updated_at = now()
WHERE coalesce(EXCLUDED.edited_at, EXCLUDED.posted_at) >= coalesce(p.edited_at, p.posted_at)
  AND ((p.grouped_id, p.text, p.posted_at, p.edited_at, p.media_kind, p.media_file_id, p.media_size,
       p.deleted_at IS NULL)
      IS DISTINCT FROM
      (EXCLUDED.grouped_id, EXCLUDED.text, EXCLUDED.posted_at, EXCLUDED.edited_at, EXCLUDED.media_kind,
       EXCLUDED.media_file_id, EXCLUDED.media_size, true)
   OR (p.media_sha256 IS NULL AND EXCLUDED.media_sha256 IS NOT NULL)
   OR (p.thumb_sha256 IS NULL AND EXCLUDED.thumb_sha256 IS NOT NULL)
   OR (p.media_sha256 IS NULL AND p.media_skip_reason IS DISTINCT FROM EXCLUDED.media_skip_reason));
