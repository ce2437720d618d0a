INSERT INTO media_objects (sha256, mime, size_bytes, s3_key, width, height)
VALUES (%(sha256)s, %(mime)s, %(size)s, %(s3_key)s, %(width)s, %(height)s)
ON CONFLICT (sha256) DO NOTHING;
