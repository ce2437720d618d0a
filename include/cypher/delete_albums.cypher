// Albums whose every post was deleted, with their edges. Parameters: $album_ids
UNWIND $album_ids AS id
MATCH (a:Album {album_id: id})
DETACH DELETE a
