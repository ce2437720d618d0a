"""The albums view (the plugin's FastAPI app) after a real run of the DAG on the sample archive,
behind Airflow's own authentication: SimpleAuthManager's JWTs, its roles, and the tenants
Variable. (The real api-server and a browser: tests/e2e.)"""

import re

import pytest
from fastapi.testclient import TestClient

from tests.dag.conftest import run_dag

pytestmark = pytest.mark.dag

USERS = "admin:admin,ops:user,viewer:viewer"


@pytest.fixture
def auth(monkeypatch):
    """Airflow's SimpleAuthManager with three users of three roles; returns user name -> JWT."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    monkeypatch.setenv("AIRFLOW__CORE__AUTH_MANAGER",
                       "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", USERS)
    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "albums-view-test-secret-" + "x" * 48)
    manager = create_auth_manager()
    return {name: manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))
            for name, role in (user.split(":") for user in USERS.split(","))}


@pytest.fixture
def view(pipeline, dagbag, auth):
    from include.album.admin.ui import create_app

    state, _ = run_dag(dagbag)
    assert state == "success"
    return TestClient(create_app())


def as_user(auth, name):
    return {"Authorization": f"Bearer {auth[name]}"}


def test_nothing_answers_without_a_valid_airflow_session(view):
    for path in ("/", "/api/albums?tenant=acme", "/media/1/0?tenant=acme", "/search?tenant=acme&q=x",
                 "/quarantine", "/channels"):
        assert view.get(path).status_code == 401, path
        assert view.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 403, path
        assert view.get(path, cookies={"_token": "not-a-token"}).status_code == 403, path
    assert view.post("/quarantine/1/requeue?tenant=acme").status_code == 401


def test_albums_newest_first_with_thumbnails_in_position_order_and_their_runs(view, auth, conn):
    expected = [r["id"] for r in conn.execute(
        "SELECT g.id FROM media_groups g JOIN subscriptions s ON s.channel_id = g.channel_id "
        "WHERE s.tenant_id = 'acme' ORDER BY g.posted_at DESC, g.id DESC")]
    listed = view.get("/api/albums?tenant=acme", headers=as_user(auth, "admin")).json()
    assert [a["album_id"] for a in listed["albums"]] == expected and len(expected) >= 5 and listed["next"] is None

    html = view.get("/?tenant=acme", headers=as_user(auth, "admin")).text
    assert [int(i) for i in re.findall(r'<section class="card" data-album="(\d+)"', html)] == expected
    first = html.split(f'data-album="{expected[-1]}"')[1].split("</section>")[0]
    positions = [int(p) for p in re.findall(r'data-position="(\d+)"', first)]
    assert positions == sorted(positions) and positions[0] == 0
    src = re.search(r'<img src="([^"]+)"', first).group(1).replace("&amp;", "&")
    image = view.get(f"/{src}", cookies={"_token": auth["viewer"]})  # the UI's session cookie works too
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert re.search(r"/runs/[^/]+/tasks/album\.enrich/mapped/\d+", first), "a link to the group that enriched it"

    from include.album.orchestration.connections import load_settings, media_store
    from include.album.steps.assembly import vision_input

    album_id, position = map(int, re.match(r"media/(\d+)/(\d+)", src).groups())
    item = next(i for i in conn.execute(
        "SELECT i.position, i.media_kind, i.sha256, i.thumb_sha256, m.mime, m.s3_key, t.s3_key AS thumb_s3_key, "
        "NULL AS media_skip_reason FROM media_group_items i LEFT JOIN media_objects m ON m.sha256 = i.sha256 "
        "LEFT JOIN media_objects t ON t.sha256 = i.thumb_sha256 WHERE i.group_id = %s", (album_id,))
        if i["position"] == position)
    media_store(load_settings()).delete([vision_input(item).s3_key])  # lost from S3 (reconcile puts it back)
    missing = view.get(f"/{src}", headers=as_user(auth, "admin"))
    assert missing.status_code == 404 and "is not in S3 (NoSuchKey)" in missing.json()["detail"]


def test_tenants_follow_the_variable_and_requeue_needs_edit_rights(view, auth, conn, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_TELEGRAM_ALBUMS_UI_TENANTS", '{"viewer": ["globex"], "*": ["*"]}')
    viewer = as_user(auth, "viewer")
    assert view.get("/api/albums?tenant=acme", headers=viewer).status_code == 403
    globex = {a["album_id"] for a in view.get("/api/albums", headers=viewer).json()["albums"]}  # its first tenant
    acme_only = conn.execute(
        "SELECT g.id FROM media_groups g WHERE NOT EXISTS (SELECT 1 FROM subscriptions s WHERE "
        "s.channel_id = g.channel_id AND s.tenant_id = 'globex') LIMIT 1").fetchone()["id"]
    assert acme_only not in globex
    assert view.get(f"/media/{acme_only}/0?tenant=globex", headers=viewer).status_code == 404
    assert view.get("/api/albums?tenant=acme", headers=as_user(auth, "ops")).status_code == 200  # "*"

    album = min(globex)
    conn.execute("INSERT INTO album_failures (album_id, step, error, attempts, content_hash, first_failed_at, "
                 "last_failed_at, quarantined_at) SELECT id, 'vision', 'boom', 4, content_hash, now(), now(), now() "
                 "FROM media_groups WHERE id = %s", (album,))
    page = view.get("/quarantine?tenant=globex", headers=viewer).text
    assert f'data-album="{album}"' in page and "Requeue" not in page  # a viewer may look, not act
    assert view.post(f"/quarantine/{album}/requeue?tenant=globex", headers=viewer).status_code == 403
    done = view.post(f"/quarantine/{album}/requeue?tenant=globex", headers=as_user(auth, "ops"),
                     follow_redirects=False)
    assert done.status_code == 303
    assert conn.execute("SELECT 1 FROM album_failures WHERE album_id = %s", (album,)).fetchone() is None


def test_search_and_channels(view, auth):
    admin = as_user(auth, "admin")
    found = view.get("/search", params={"tenant": "acme", "q": "Evening at the harbour"}, headers=admin).text
    assert 'class="card"' in found and "harbour" in found.lower()
    nothing = view.get("/search", params={"tenant": "acme", "q": "квантовая хромодинамика глюонов"}, headers=admin)
    assert "no results" in nothing.text
    assert view.get("/search", params={"tenant": "acme", "q": ""}, headers=admin).status_code == 422
    channels = view.get("/channels?tenant=acme", headers=admin).text
    assert "@album_lab" in channels and "active" in channels
    by_channel = view.get("/search", params={"tenant": "acme", "q": "Album Lab"}, headers=admin).text
    assert by_channel.count('class="card"') >= 2  # the README's example: the channel's albums, by its title


def test_an_unknown_tenant_is_404_as_a_page_and_as_json(view, auth):
    admin = as_user(auth, "admin")
    for path in ("/", "/search?q=boats", "/channels", "/quarantine"):
        page = view.get(f"{path}{'&' if '?' in path else '?'}tenant=acmee", headers={**admin, "Accept": "text/html"})
        assert page.status_code == 404 and "<h1>404</h1>" in page.text
        assert "no such tenant &#x27;acmee&#x27;" in page.text
    api = view.get("/api/albums?tenant=acmee", headers=admin)
    assert api.status_code == 404 and api.json()["detail"].startswith("no such tenant 'acmee'")


def test_every_album_of_a_run_with_more_albums_than_groups_links_to_the_task_that_enriched_it(
        pipeline, dagbag, auth, conn, monkeypatch):
    """Two album groups for seven albums: units of several albums, whose labels say only their
    ids ("3 albums, 1, 2, 3", cut with "+N" past 120 characters). Each card links to its
    unit's task from what the task recorded (album_runs), not from the label."""
    from urllib.parse import unquote

    from include.album.admin.ui import create_app

    pipeline.with_settings(monkeypatch, albums_mapped_per_run=2)
    state, dag_run = run_dag(dagbag)
    assert state == "success"
    view = TestClient(create_app())
    html = view.get("/?tenant=globex", headers=as_user(auth, "admin")).text
    cards = re.findall(r'<section class="card" data-album="(\d+)".*?</section>', html, re.S)
    links = {int(album): re.findall(r'/runs/([^/"]+)/tasks/album\.enrich/mapped/(\d+)', card)
             for album, card in zip(cards, re.findall(r'<section class="card".*?</section>', html, re.S),
                                    strict=True)}
    assert len(links) >= 3 and all(links.values()), links  # every album, none past a cut
    assert {index for found in links.values() for _, index in found} <= {"0", "1"}  # the two groups
    assert {unquote(run) for found in links.values() for run, _ in found} == {dag_run.run_id}


def test_an_album_page_shows_every_item_and_where_the_album_comes_from(view, auth, conn):
    """Items full size in position order with what vision read; a video served in ranges; a PDF's
    first page and its download under its file name; a GIF that plays by itself; the post on
    Telegram; the runs."""
    admin = as_user(auth, "admin")
    albums = {r["album_kind"]: r["id"] for r in conn.execute(
        "SELECT DISTINCT ON (album_kind) g.id, g.album_kind FROM media_groups g JOIN subscriptions s ON "
        "s.channel_id = g.channel_id AND s.tenant_id = 'acme' ORDER BY g.album_kind, g.id")}
    page = view.get(f"/album/{albums['mixed']}?tenant=acme", headers=admin).text
    items = re.findall(r'<article class="item" data-position="(\d+)"><h3>#\d+ · (\w+)</h3>', page)
    kinds = [kind for _, kind in items]
    assert [int(p) for p, _ in items] == list(range(len(items))) and "video" in kinds and "photo" in kinds
    assert "Text on it" in page and 'target="_top"' not in page  # (Airflow's frame may not follow _top)
    assert re.search(r'<a data-top href="\.\./\.\./dags/telegram_albums/runs/[^"]+/tasks/album\.enrich/mapped/\d+"',
                     page)
    first = conn.execute("SELECT min(message_id) AS m FROM media_group_items WHERE group_id = %s",
                         (albums["mixed"],)).fetchone()["m"]
    username = conn.execute("SELECT c.username FROM media_groups g JOIN channels c ON c.id = g.channel_id "
                            "WHERE g.id = %s", (albums["mixed"],)).fetchone()["username"]
    assert f'href="https://t.me/{username}/{first}"' in page

    video = kinds.index("video")
    part = view.get(f"/file/{albums['mixed']}/{video}?tenant=acme", headers={**admin, "Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.headers["content-type"] == "video/mp4"
    assert part.headers["content-range"].startswith("bytes 0-99/")
    whole = view.get(f"/file/{albums['mixed']}/{video}?tenant=acme", headers=admin)
    assert whole.status_code == 200 and whole.content[:100] == part.content

    documents = view.get(f"/album/{albums['document']}?tenant=acme", headers=admin).text
    assert "agenda.pdf" in documents and "application/pdf" in documents and "not an image" in documents
    preview = view.get(f"/preview/{albums['document']}/0?tenant=acme", headers=admin)
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    download = view.get(f"/file/{albums['document']}/0?tenant=acme&download=1", headers=admin)
    assert download.headers["content-disposition"] == "attachment; filename*=UTF-8''agenda.pdf"
    assert download.content.startswith(b"%PDF-")
    gif_and_video = view.get(f"/album/{albums['video']}?tenant=acme", headers=admin).text
    players = dict(re.findall(r'<h3>#\d+ · (\w+)</h3><video ([^>]*)>', gif_and_video))
    assert set(players) == {"gif", "video"}
    assert players["gif"].endswith(" autoplay loop muted playsinline")  # a GIF plays by itself, silent, looping
    assert "autoplay" not in players["video"] and "controls" in players["video"]
    not_globex = conn.execute("SELECT g.id FROM media_groups g WHERE NOT EXISTS (SELECT 1 FROM subscriptions s "
                              "WHERE s.channel_id = g.channel_id AND s.tenant_id = 'globex') LIMIT 1").fetchone()["id"]
    assert view.get(f"/album/{not_globex}?tenant=globex", headers=admin).status_code == 404


def test_telegram_links_of_public_and_private_channels():
    from include.album.admin.album_page import telegram_link

    assert telegram_link("album_lab", 1111111111, 102) == "https://t.me/album_lab/102"
    assert telegram_link(None, 1111111111, 102) == "https://t.me/c/1111111111/102"


def test_pages_of_albums_show_each_album_once_and_a_channel_its_own(view, auth, conn):
    admin = as_user(auth, "admin")
    expected = [r["id"] for r in conn.execute(
        "SELECT g.id FROM media_groups g JOIN subscriptions s ON s.channel_id = g.channel_id "
        "WHERE s.tenant_id = 'acme' ORDER BY g.posted_at DESC, g.id DESC")]
    seen, after = [], None
    while True:
        found = view.get("/api/albums", params={"tenant": "acme", "limit": 2, **({"after": after} if after else {})},
                         headers=admin).json()
        seen += [a["album_id"] for a in found["albums"]]
        after = found["next"]
        if after is None:
            break
    assert seen == expected and len(expected) > 2
    pages = [view.get("/?tenant=acme&limit=2", headers=admin).text]
    while 'rel="next"' in pages[-1]:
        older = re.search(r'rel="next" href="\./([^"]+)"', pages[-1]).group(1).replace("&amp;", "&")
        pages.append(view.get(f"/{older}", headers=admin).text)
    shown = [int(i) for html in pages for i in re.findall(r'<section class="card" data-album="(\d+)"', html)]
    assert shown == expected and len(pages) == -(-len(expected) // 2)
    assert view.get("/api/albums?tenant=acme&after=yesterday", headers=admin).status_code == 400
    for limit in (0, 201):  # at least one album a page, at most 200
        assert view.get(f"/api/albums?tenant=acme&limit={limit}", headers=admin).status_code == 422

    lab = conn.execute("SELECT id FROM channels WHERE username = 'album_lab'").fetchone()["id"]
    assert f'<a class="channel" href="channel/{lab}?tenant=acme">@album_lab</a>' in "".join(pages)  # on its cards
    channel = view.get(f"/channel/{lab}?tenant=acme&limit=2", headers=admin).text
    own = [r["id"] for r in conn.execute("SELECT id FROM media_groups WHERE channel_id = %s ORDER BY posted_at DESC, "
                                         "id DESC", (lab,))]
    assert "@album_lab" in channel and [int(i) for i in re.findall(r'data-album="(\d+)"', channel)] == own[:2]
    assert re.search(rf'rel="next" href="{lab}\?tenant=acme&amp;limit=2&amp;after=', channel)  # the size kept
