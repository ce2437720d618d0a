// Items that left an album (its composition changed, a post was deleted). Parameters: $album_id, $post_ids
MATCH (a:Album {album_id: $album_id})-[r:CONTAINS]->(p:Post)
WHERE NOT p.post_id IN $post_ids
DELETE r
