SELECT album_id, content_hash, provider_key, status, summary FROM album_summaries WHERE album_id = %(album_id)s;
