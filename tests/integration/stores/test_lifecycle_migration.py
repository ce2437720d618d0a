"""The album lifecycle's columns (migration 0010) on a database of the schema before it, holding
albums in every state as the earlier code wrote them: each lands where it was, and the next run
has exactly the work it had before."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime

import psycopg
import pytest

from devtools.services import PgTarget, recreate_database
from include.album.stores import db
from tests.conftest import ADMIN_DSN, PG_HOST, PG_PORT, PG_USER

pytestmark = pytest.mark.integration

# albums_needing_work as it read the JSON paths before the migration
BEFORE = """
SELECT g.id FROM media_groups g
WHERE g.deleted_at IS NULL
  AND (g.status <> 'assembled'
       OR (g.meta -> 'enrichment' ->> 'content_hash') IS DISTINCT FROM g.content_hash
       OR (g.meta -> 'index' ->> 'enrichment_assembled_at')
          IS DISTINCT FROM (g.meta -> 'enrichment' ->> 'assembled_at'))
  AND NOT EXISTS (SELECT 1 FROM album_failures f
                  WHERE f.album_id = g.id AND f.quarantined_at IS NOT NULL AND f.content_hash = g.content_hash)
ORDER BY g.id
"""
T1, T2 = "2026-12-01T10:00:00+00:00", "2026-12-02T10:00:00+00:00"
ALBUMS = {  # grouped_id: (status, content_hash, meta, deleted)
    1: ("open", "h1", {}, False),  # new
    2: ("assembled", "h2", {"enrichment": {"content_hash": "h2", "assembled_at": T1},
                            "index": {"enrichment_assembled_at": T1, "indexed_at": T1, "has_text": True}}, False),
    3: ("assembled", "h3", {"enrichment": {"content_hash": "h3", "assembled_at": T1}}, False),  # not indexed
    4: ("partial", "h4", {"enrichment": {"content_hash": "h4", "assembled_at": T1},
                          "index": {"enrichment_assembled_at": T1, "indexed_at": T1}}, False),
    5: ("open", "h5b", {"enrichment": {"content_hash": "h5a", "assembled_at": T1},  # recomposed since
                        "index": {"enrichment_assembled_at": T1, "indexed_at": T1}}, False),
    6: ("assembled", "h6", {"enrichment": {"content_hash": "h6", "assembled_at": T2},  # re-enriched since indexed
                            "index": {"enrichment_assembled_at": T1, "indexed_at": T1}}, False),
    7: ("assembled", "h7", {"enrichment": {"content_hash": "h7", "assembled_at": T1, "s3_keys": {"a": "k"}},
                            "index": {"enrichment_assembled_at": T1, "indexed_at": T1}}, True),  # tombstoned
}


@pytest.fixture
def before_lifecycle(tmp_path, monkeypatch):
    """A database migrated up to 0009, then the real migrations directory back."""
    earlier = tmp_path / "migrations"
    earlier.mkdir()
    for path in db.migration_files():
        if path.stem < "0010":
            shutil.copy(path, earlier / path.name)
    name = f"telegram_albums_test_lifecycle_{uuid.uuid4().hex[:8]}"
    recreate_database(ADMIN_DSN, name)
    target = PgTarget(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=name)
    conn = db.connect(target.dsn)
    conn.autocommit = True
    real = db.MIGRATIONS_DIR
    monkeypatch.setattr(db, "MIGRATIONS_DIR", earlier)
    db.apply_migrations(conn)
    monkeypatch.setattr(db, "MIGRATIONS_DIR", real)
    yield conn
    conn.close()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def test_albums_in_every_state_keep_their_place_and_the_next_run_has_the_same_work(before_lifecycle):
    conn = before_lifecycle
    conn.execute("INSERT INTO channels (id, access_hash, title) VALUES (1, 1, 'c')")
    for grouped_id, (status, content_hash, meta, deleted) in ALBUMS.items():
        conn.execute("INSERT INTO media_groups (channel_id, grouped_id, album_kind, items_count, posted_at, "
                     "content_hash, status, meta, deleted_at) VALUES (1, %s, 'photo', 1, %s, %s, %s, %s, %s)",
                     (grouped_id, datetime(2026, 12, 1, tzinfo=UTC), content_hash, status, json.dumps(meta),
                      datetime(2026, 12, 3, tzinfo=UTC) if deleted else None))
    ids = {r["grouped_id"]: r["id"] for r in conn.execute("SELECT id, grouped_id FROM media_groups")}
    work_before = [r["id"] for r in conn.execute(BEFORE)]

    assert db.apply_migrations(conn)[0] == "0010_album_lifecycle"
    work_after = [r["id"] for r in db.fetch_all(conn, "albums_needing_work")]
    assert work_after == work_before == [ids[g] for g in (1, 3, 4, 5, 6)]
    rows = {r["grouped_id"]: r for r in conn.execute(
        "SELECT grouped_id, status, enriched_hash, enriched_at, indexed_version, indexed_at, meta FROM media_groups")}
    assert rows[2]["enriched_hash"] == "h2" and rows[2]["enriched_at"] == rows[2]["indexed_version"] \
        == datetime.fromisoformat(T1)
    assert (rows[1]["enriched_hash"], rows[1]["indexed_version"]) == (None, None)
    assert rows[3]["indexed_version"] is None and rows[5]["enriched_hash"] == "h5a"
    assert rows[6]["enriched_at"] == datetime.fromisoformat(T2) != rows[6]["indexed_version"]
    assert {g: r["status"] for g, r in rows.items()} == {g: a[0] for g, a in ALBUMS.items()}  # states unchanged
    assert "enrichment_assembled_at" not in rows[2]["meta"]["index"] and rows[2]["meta"]["index"]["has_text"]
    to_unpublish = [r["id"] for r in db.fetch_all(conn, "albums_to_unpublish", {"limit": 10})]
    assert to_unpublish == [ids[7]]
