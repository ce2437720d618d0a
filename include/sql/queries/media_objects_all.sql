-- Every stored media object, named as media_object_upsert takes them (the benchmark copies them).
SELECT sha256, mime, size_bytes AS size, s3_key, width, height FROM media_objects ORDER BY sha256;
