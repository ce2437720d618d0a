INSERT INTO media_group_items (group_id, position, message_id, media_kind, sha256, thumb_sha256)
VALUES (%(album_id)s, %(position)s, %(message_id)s, %(media_kind)s, %(sha256)s, %(thumb_sha256)s);
