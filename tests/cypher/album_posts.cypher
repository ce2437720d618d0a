// Posts of an album in position order. Parameters: $album_id
MATCH (a:Album {album_id: $album_id})-[r:CONTAINS]->(p:Post)
RETURN p.post_id AS post_id, p.channel_id AS channel_id, p.message_id AS message_id, r.position AS position,
       p.media_kind AS media_kind
ORDER BY r.position
