// Tenants, channels and who subscribes to what. Parameters: $rows = [{tenant_id, channel_id, username, title}]
UNWIND $rows AS row
MERGE (t:Tenant {tenant_id: row.tenant_id})
MERGE (c:Channel {channel_id: row.channel_id})
SET c.username = row.username, c.title = row.title
MERGE (t)-[:SUBSCRIBES]->(c)
