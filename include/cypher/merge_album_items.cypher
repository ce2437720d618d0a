// Posts of albums, in position order. Parameters: $rows = [{album_id, post_id, channel_id, message_id,
// position, media_kind, text, posted_at}]
UNWIND $rows AS row
MATCH (a:Album {album_id: row.album_id})
MERGE (p:Post {post_id: row.post_id})
SET p.channel_id = row.channel_id, p.message_id = row.message_id, p.media_kind = row.media_kind,
    p.text = row.text, p.posted_at = row.posted_at
MERGE (a)-[r:CONTAINS]->(p)
SET r.position = row.position
