"""The CLI against the running Postgres; channels resolved through the archive transport."""

import pytest

from devtools.sample import LAB, NEWS
from include.album.admin.cli import main

pytestmark = pytest.mark.integration


def cli(pg, *args: str) -> int:
    return main(["--dsn", pg.dsn, *args])


def test_channel_tenant_and_subscription_lifecycle(pg, conn, sample_archive, capsys):
    path, _ = sample_archive
    assert cli(pg, "migrate") == 0
    assert "none, schema up to date" in capsys.readouterr().out

    assert cli(pg, "channels", "add", "@album_lab", "--archive", str(path), "--tenant", "acme") == 0
    assert cli(pg, "channels", "add", "@novosti_test", "--id", str(NEWS), "--access-hash", "5000000000000000002",
               "--title", "Новости тест") == 0
    assert cli(pg, "subscribe", "acme", str(NEWS)) == 0
    row = conn.execute("SELECT access_hash, title FROM channels WHERE id = %s", (LAB,)).fetchone()
    assert row == {"access_hash": 5000000000000000001, "title": "Album Lab"}

    capsys.readouterr()
    assert cli(pg, "channels", "list") == 0
    listing = capsys.readouterr().out
    assert "@album_lab" in listing and "tenants=acme" in listing

    assert cli(pg, "unsubscribe", "acme", str(NEWS)) == 0
    assert cli(pg, "unsubscribe", "acme", str(NEWS)) == 1
    assert cli(pg, "channels", "remove", str(LAB)) == 0
    assert conn.execute("SELECT is_active FROM channels WHERE id = %s", (LAB,)).fetchone()["is_active"] is False


def test_invalid_tenant_ids_are_refused_before_use(pg, capsys):
    assert cli(pg, "tenants", "add", "../etc") == 2
    assert "invalid tenant id" in capsys.readouterr().err


def test_unknown_username_is_a_clear_error(pg, sample_archive, capsys):
    assert cli(pg, "channels", "add", "@nobody_here", "--archive", str(sample_archive[0])) == 2
    assert "nobody_here" in capsys.readouterr().err


def test_dev_commands_are_not_offered_by_the_product_cli(capsys):
    for command in ("demo", "benchmark", "sample"):
        assert main([command, "--help"]) == 2
        assert f"python -m devtools {command}" in capsys.readouterr().err
        assert main(["--dsn", "dbname=x", command]) == 2
        assert f"python -m devtools {command}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    usage = capsys.readouterr().out
    assert not any(command in usage for command in ("demo", "benchmark", "sample"))


def test_every_channel_of_an_archive_can_be_registered_at_once(pg, conn, sample_archive, capsys):
    path, expected = sample_archive
    assert cli(pg, "channels", "add", "--archive", str(path)) == 0
    assert "3 channel(s)" in capsys.readouterr().out
    subs = conn.execute("SELECT tenant_id, channel_id FROM subscriptions ORDER BY 2").fetchall()
    assert subs == [{"tenant_id": "default", "channel_id": c["id"]} for c in expected["channels"]]
    assert cli(pg, "channels", "add", "--archive", str(path), "--tenant", "acme") == 0
    assert conn.execute("SELECT count(*) AS n FROM subscriptions WHERE tenant_id = 'acme'").fetchone()["n"] == 3


def test_a_channel_set_aside_is_listed_with_its_reason_and_enable_takes_it_back(pg, conn, sample_archive, capsys):
    from include.album.admin.channels import register_archive
    from include.album.source.archive import read_manifest

    register_archive(conn, read_manifest(sample_archive[0]))
    conn.execute("UPDATE channels SET state = 'unavailable', state_reason = 'CHANNEL_PRIVATE', "
                 "state_since = now(), checked_at = now() WHERE id = %s", (NEWS,))
    capsys.readouterr()
    assert cli(pg, "channels", "list") == 0
    listing = capsys.readouterr().out
    assert "unavailable since" in listing and "(CHANNEL_PRIVATE)" in listing and f"channels enable {NEWS}" in listing

    assert cli(pg, "channels", "enable", str(NEWS)) == 0
    assert "enabled: the next run asks Telegram for it" in capsys.readouterr().out
    row = conn.execute("SELECT state, state_reason, state_since FROM channels WHERE id = %s", (NEWS,)).fetchone()
    assert row == {"state": "active", "state_reason": None, "state_since": None}
    assert cli(pg, "channels", "enable", str(NEWS)) == 1  # nothing set aside any more
    assert "not found, or not set aside" in capsys.readouterr().out


def test_search_refuses_an_empty_query_and_a_qdrant_path_that_does_not_exist(pg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", "{}")
    assert cli(pg, "search", "   ", "--tenant", "acme") == 2
    assert capsys.readouterr().err.strip() == "error: empty query: give the words to search for"

    missing = tmp_path / "no-such-qdrant"
    assert cli(pg, "search", "street food", "--tenant", "acme", "--qdrant-path", str(missing)) == 2
    err = capsys.readouterr().err
    assert f"--qdrant-path {missing} does not exist" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()  # not created, empty, as a side effect

    (tmp_path / "qdrant").mkdir()  # a directory that holds no collection of ours
    assert cli(pg, "search", "street food", "--tenant", "acme", "--qdrant-path", str(tmp_path / "qdrant")) == 2
    assert "Qdrant has no collection 'telegram_albums'" in capsys.readouterr().err


def test_browse_lists_a_tenants_points_by_filters_text_less_ones_too(pg, tmp_path, capsys, monkeypatch):
    from qdrant_client import QdrantClient

    from include.album.providers.embeddings import default_embedder
    from include.album.stores.qdrant import IndexDoc, QdrantIndex, album_point_id, post_point_id

    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", "{}")
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    index = QdrantIndex(client, "telegram_albums", default_embedder())
    index.ensure_collection()
    base = {"channel_id": LAB, "tenant_ids": ["acme"]}
    index.upsert([
        IndexDoc(album_point_id(7), "", {**base, "kind": "album", "album_id": 7, "labels": ["photo", "person"],
                                         "posted_at": "2026-01-05T10:02:00+00:00"}),
        IndexDoc(post_point_id(LAB, 101), "Welcome to Album Lab", {**base, "kind": "post", "labels": [],
                                                                     "posted_at": "2026-01-05T10:01:00+00:00"}),
    ])
    client.close()
    capsys.readouterr()
    where = ["--tenant", "acme", "--qdrant-path", str(tmp_path / "qdrant")]
    assert cli(pg, "browse", *where, "--album", "7") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "album 7" in line and "(no text)" in line
    assert cli(pg, "browse", *where, "--labels", "person") == 0
    assert "album 7" in capsys.readouterr().out
    assert cli(pg, "browse", *where) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "album 7" in lines[0] and "Welcome to Album Lab" in lines[1]  # newest first
    assert cli(pg, "browse", "--tenant", "globex", "--qdrant-path", str(tmp_path / "qdrant")) == 0
    assert "nothing in tenant globex matches these filters" in capsys.readouterr().out
