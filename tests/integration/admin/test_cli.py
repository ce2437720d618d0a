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

    capsys.readouterr()
    assert cli(pg, "unsubscribe", "acme", str(NEWS)) == 0
    assert capsys.readouterr().out == f"tenant acme unsubscribed from channel {NEWS}\n"
    assert cli(pg, "unsubscribe", "acme", str(NEWS)) == 0  # already done: nothing to do, not a mistake
    assert capsys.readouterr().out == f"tenant acme was not subscribed to channel {NEWS}: nothing changed\n"
    assert cli(pg, "subscribe", "acme", "@Novosti_Test") == 0  # a channel by its @username, any case
    assert cli(pg, "unsubscribe", "acme", "novosti_test") == 0
    assert cli(pg, "channels", "remove", "@album_lab") == 0
    assert conn.execute("SELECT is_active FROM channels WHERE id = %s", (LAB,)).fetchone()["is_active"] is False
    capsys.readouterr()
    assert cli(pg, "channels", "enable", "@album_lab") == 0
    assert capsys.readouterr().out == "channel @album_lab was not set aside: nothing changed\n"
    assert cli(pg, "channels", "remove", str(LAB)) == 0


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
    assert cli(pg, "channels", "enable", str(NEWS)) == 0  # nothing set aside any more: nothing to do
    assert capsys.readouterr().out == f"channel {NEWS} was not set aside: nothing changed\n"


def test_media_to_fetch_again_media_given_up_and_the_sessions_waits_are_listed(pg, conn, sample_archive, capsys):
    from include.album.admin.channels import register_archive
    from include.album.source.archive import read_manifest

    register_archive(conn, read_manifest(sample_archive[0]))
    conn.execute("INSERT INTO posts (channel_id, message_id, posted_at, media_kind) VALUES "
                 "(%(lab)s, 102, now(), 'photo'), (%(lab)s, 103, now(), 'photo')", {"lab": LAB})
    conn.execute("UPDATE posts SET media_skip_reason = 'media_gone' WHERE message_id = 103")
    conn.execute("INSERT INTO media_retries (channel_id, message_id, part, tries, last_error, retry_after) "
                 "VALUES (%s, 102, 'media', 2, 'RPC_CALL_FAIL: Telegram is having internal issues', "
                 "'2030-01-01T10:00:00Z')", (LAB,))
    conn.execute("INSERT INTO telegram_waits (conn_id, request, until, error, given_at) VALUES ('telegram_default', "
                 "'upload.GetFileRequest', now() + interval '90 seconds', 'FLOOD_PREMIUM_WAIT_90', now())")
    capsys.readouterr()
    assert cli(pg, "channels", "list") == 0
    listing = capsys.readouterr().out
    assert "1 media to fetch again, next try after 2030-01-01T10:00:00+00:00 (up to 2 failed tries so far; " \
           "last: RPC_CALL_FAIL" in listing
    assert "1 media given up" in listing
    assert "session of telegram_default: Telegram asked for a wait (FLOOD_PREMIUM_WAIT_90) before " \
           "upload.GetFileRequest until" in listing


def test_search_refuses_an_empty_query_and_a_qdrant_path_that_does_not_exist(pg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", "{}")
    assert cli(pg, "tenants", "add", "acme") == 0
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

    # "{}" is too short for Airflow's secrets masker, which would warn on stdout; the CLI quiets it.
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", "{}")
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    index = QdrantIndex(client, "telegram_albums", default_embedder())
    index.ensure_collection()
    base = {"channel_id": LAB, "channel_username": "album_lab", "tenant_ids": ["acme"]}
    item = {**base, "kind": "post", "album_id": 7, "labels": ["photo"]}
    index.upsert([
        IndexDoc(album_point_id(7), "", {**base, "kind": "album", "album_id": 7, "labels": ["photo", "person"],
                                         "posted_at": "2026-01-05T10:02:00+00:00"}),
        # The second item is the newest point: newest first would put it before the album's own.
        IndexDoc(post_point_id(LAB, 103), "", {**item, "message_id": 103, "position": 1,
                                               "posted_at": "2026-01-05T10:02:05+00:00"}),
        IndexDoc(post_point_id(LAB, 102), "", {**item, "message_id": 102, "position": 0,
                                               "posted_at": "2026-01-05T10:02:00+00:00"}),
        # Indexed before the channel had a @username: shown by its id.
        IndexDoc(post_point_id(LAB, 101), "Welcome to Album Lab", {
            **base, "channel_username": None, "kind": "post", "message_id": 101, "labels": [],
            "posted_at": "2026-01-05T10:01:00+00:00"}),
    ])
    client.close()
    for tenant in ("acme", "globex"):
        assert cli(pg, "tenants", "add", tenant) == 0
    capsys.readouterr()
    where = ["--tenant", "acme", "--qdrant-path", str(tmp_path / "qdrant")]
    assert cli(pg, "browse", *where, "--album", "7") == 0
    lines = capsys.readouterr().out.splitlines()  # the album's point, then its items in order
    assert [line.split()[1:5] for line in lines] == [["album", "7", "album", "@album_lab"],
                                                     ["album", "7", "post", "@album_lab/102"],
                                                     ["album", "7", "post", "@album_lab/103"]]
    assert "@album_lab/102 #0" in lines[1] and "@album_lab/103 #1" in lines[2]
    assert all("(no text)" in line for line in lines)
    assert cli(pg, "browse", *where, "--labels", "person") == 0
    [line] = capsys.readouterr().out.splitlines()
    assert "album 7" in line
    assert cli(pg, "channels", "add", "@album_lab", "--id", str(LAB), "--access-hash", "1", "--title", "Lab") == 0
    capsys.readouterr()
    assert cli(pg, "browse", *where, "--channel", "@album_lab") == 0  # a channel by @username or id
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert cli(pg, "browse", *where, "--channel", str(NEWS)) == 2
    assert one_error_line(capsys) == (f"error: channel {NEWS} is not registered: `python -m include.album channels "
                                      "list` shows the channels")
    assert cli(pg, "browse", *where) == 0
    lines = capsys.readouterr().out.splitlines()  # newest first
    assert len(lines) == 4 and "@album_lab/103 #1" in lines[0]
    assert f"no album   post {LAB}/101" in lines[3] and "Welcome to Album Lab" in lines[3]
    assert cli(pg, "search", "welcome", *where) == 0  # search prints its hits the same way
    [line] = capsys.readouterr().out.splitlines()
    assert f"no album   post {LAB}/101" in line and "Welcome to Album Lab" in line
    assert cli(pg, "browse", "--tenant", "globex", "--qdrant-path", str(tmp_path / "qdrant")) == 0
    assert "nothing in tenant globex matches these filters" in capsys.readouterr().out


def one_error_line(capsys) -> str:
    """What a user's mistake prints: one line on stderr, no traceback."""
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


NOT_REGISTERED = "is not registered: `python -m include.album channels list` shows the channels"


def test_unknown_tenant_and_channel_are_one_line_errors(pg, capsys):
    assert cli(pg, "channels", "add", "--id", str(NEWS), "--access-hash", "5", "--title", "News") == 0
    for command in ("subscribe", "unsubscribe"):
        assert cli(pg, command, "nobody", str(NEWS)) == 2
        assert one_error_line(capsys) == ("error: no tenant 'nobody' (tenants: none yet; add one with "
                                          "`python -m include.album tenants add nobody`)")
    assert cli(pg, "tenants", "add", "acme") == 0
    for command in (["subscribe", "acme"], ["unsubscribe", "acme"], ["channels", "remove"], ["channels", "enable"]):
        assert cli(pg, *command, "999") == 2
        assert one_error_line(capsys) == f"error: channel 999 {NOT_REGISTERED}"
        assert cli(pg, *command, "@no_such_channel") == 2
        assert one_error_line(capsys) == f"error: channel @no_such_channel {NOT_REGISTERED}"
    for command in (["search", "boats"], ["browse"]):
        assert cli(pg, *command, "--tenant", "acmee") == 2
        assert one_error_line(capsys) == ("error: no tenant 'acmee' (tenants: acme; add one with "
                                          "`python -m include.album tenants add acmee`)")
    assert cli(pg, "browse", "--tenant", "acme", "--channel", "@nowhere") == 2
    assert one_error_line(capsys) == f"error: channel @nowhere {NOT_REGISTERED}"


def test_a_command_given_half_is_a_one_line_error(pg, capsys):
    assert cli(pg, "channels", "add") == 2
    assert one_error_line(capsys) == ("error: give a username to resolve, --id/--access-hash/--title, or --archive "
                                      "alone for all channels of an archive")
    assert cli(pg, "channels", "add", "--id", str(NEWS)) == 2
    assert one_error_line(capsys) == ("error: --id needs --access-hash and --title (or give a username to resolve "
                                      "once)")
    assert cli(pg, "quarantine", "requeue") == 2
    assert one_error_line(capsys) == "error: give the album ids to re-queue, or --all"
    assert cli(pg, "quarantine", "requeue", "7", "--all") == 2
    assert one_error_line(capsys) == "error: give album ids or --all, not both"


def quarantine(conn, *album_ids: int) -> None:
    for album_id in album_ids:
        conn.execute("INSERT INTO album_failures (album_id, content_hash, step, error, attempts, quarantined_at) "
                     "SELECT id, content_hash, 'vision', 'boom', 4, now() FROM media_groups WHERE id = %s",
                     (album_id,))


def test_requeue_names_the_albums_that_are_not_quarantined(pg, conn, capsys):
    conn.execute("INSERT INTO channels (id, access_hash, title) VALUES (%s, 1, 'Lab')", (LAB,))
    albums = [conn.execute("INSERT INTO media_groups (channel_id, grouped_id, album_kind, items_count, posted_at, "
                           "content_hash) VALUES (%s, %s, 'photo', 2, now(), 'h') RETURNING id",
                           (LAB, grouped_id)).fetchone()["id"] for grouped_id in (1, 2, 3)]
    first, second, third = albums
    quarantine(conn, first, second)
    unknown = third + 1000

    assert cli(pg, "quarantine", "requeue", str(third)) == 2  # none of them was quarantined
    assert one_error_line(capsys) == (f"error: album {third} is not quarantined: `python -m include.album "
                                      "quarantine list` shows the quarantined albums")
    assert cli(pg, "quarantine", "requeue", str(third), str(unknown)) == 2
    assert one_error_line(capsys) == (f"error: albums {third}, {unknown} are not quarantined: `python -m "
                                      "include.album quarantine list` shows the quarantined albums")

    assert cli(pg, "quarantine", "requeue", str(first), str(third)) == 0  # some were: done, the others named
    assert capsys.readouterr().out.splitlines() == [
        f"re-queued 1 album(s): {first}; the next run of telegram_albums processes them",
        f"album {third} is not quarantined: `python -m include.album quarantine list` shows the quarantined albums"]

    assert cli(pg, "quarantine", "requeue", "--all") == 0
    assert capsys.readouterr().out.splitlines() == [
        f"re-queued 1 album(s): {second}; the next run of telegram_albums processes them"]
    assert cli(pg, "quarantine", "requeue", "--all") == 0
    assert capsys.readouterr().out == "no quarantined albums\n"
    assert conn.execute("SELECT count(*) AS n FROM album_failures").fetchone()["n"] == 0


def test_an_unreachable_database_is_a_one_line_error_without_its_password(capsys):
    assert main(["--dsn", "postgresql://postgres:hunter2@127.0.0.1:1/albums", "channels", "list"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: cannot reach the application database (connection failed:")
    assert line.endswith("start Postgres, or point --dsn / $ALBUMS_DB_DSN at it") and "hunter2" not in line


def test_a_database_without_the_schema_says_to_migrate(pg, conn, capsys):
    conn.execute("DROP SCHEMA public CASCADE")
    conn.execute("CREATE SCHEMA public")
    for command in (["channels", "list"], ["quarantine", "list"]):
        assert cli(pg, *command) == 2
        line = one_error_line(capsys)
        assert line.startswith("error: the application database has no schema yet (relation ")
        assert line.endswith("run `python -m include.album migrate` (same --dsn or connection) first")


def test_a_missing_connection_names_it_and_the_ways_to_set_it(monkeypatch, capsys):
    monkeypatch.delenv("ALBUMS_DB_DSN", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_ALBUMS_DB", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_SETTINGS", "{}")
    assert main(["channels", "list"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: connection albums_db is not defined: set it in the Airflow UI")
    assert "AIRFLOW_CONN_ALBUMS_DB" in line and line.endswith("; or give --dsn / $ALBUMS_DB_DSN")


def test_an_unreadable_archive_or_manifest_is_named(pg, tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert cli(pg, "channels", "add", "--archive", str(missing)) == 2
    assert one_error_line(capsys) == (f"error: {missing} is not a telegram-archive/1 archive: manifest.json is "
                                      "missing (give the directory `python -m include.album record` wrote)")
    (tmp_path / "manifest.json").write_text('{\n  "format": "telegram-archive/1",\n', encoding="utf-8")
    assert cli(pg, "channels", "add", "--archive", str(tmp_path)) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: {tmp_path / 'manifest.json'} cannot be read (")
    assert line.endswith("re-record the archive or restore the file")


def test_dsn_and_verbose_are_taken_after_the_subcommand_too(pg, capsys):
    assert main(["channels", "list", "--dsn", pg.dsn]) == 0
    assert main(["--dsn", "postgresql://postgres@127.0.0.1:1/x", "channels", "list", "--dsn", pg.dsn]) == 0
    capsys.readouterr()
    with pytest.raises(LookupError):  # -v: the traceback, for a bug report
        main(["subscribe", "nobody", "1", "--dsn", pg.dsn, "-v"])
