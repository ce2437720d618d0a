DELETE FROM media_group_items WHERE group_id = %(album_id)s;
