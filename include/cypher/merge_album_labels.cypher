// Vision labels of albums. Parameters: $rows = [{album_id, label, count}]
UNWIND $rows AS row
MATCH (a:Album {album_id: row.album_id})
MERGE (l:Label {name: row.label})
MERGE (a)-[r:LABELED]->(l)
SET r.count = row.count
