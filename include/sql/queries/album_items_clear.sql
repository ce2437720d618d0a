DELETE FROM media_group_items WHERE group_id = ANY(%(album_ids)s);
