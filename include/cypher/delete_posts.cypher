// Posts deleted on Telegram, with their edges. Parameters: $post_ids
UNWIND $post_ids AS id
MATCH (p:Post {post_id: id})
DETACH DELETE p
