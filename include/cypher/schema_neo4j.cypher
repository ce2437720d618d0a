// Neo4j: uniqueness constraints (each also creates the index MERGE uses). One statement per line.
CREATE CONSTRAINT tenant_id IF NOT EXISTS FOR (t:Tenant) REQUIRE t.tenant_id IS UNIQUE
CREATE CONSTRAINT channel_id IF NOT EXISTS FOR (c:Channel) REQUIRE c.channel_id IS UNIQUE
CREATE CONSTRAINT album_id IF NOT EXISTS FOR (a:Album) REQUIRE a.album_id IS UNIQUE
CREATE CONSTRAINT post_id IF NOT EXISTS FOR (p:Post) REQUIRE p.post_id IS UNIQUE
CREATE CONSTRAINT label_name IF NOT EXISTS FOR (l:Label) REQUIRE l.name IS UNIQUE
