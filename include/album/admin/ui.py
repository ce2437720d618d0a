"""The albums view inside the Airflow UI: a FastAPI app the plugin mounts in the api-server.

Per tenant: albums newest first with their thumbnails in position order (served from S3 here),
caption, summary, labels and status; a search box (the CLI's tenant-scoped search); the
quarantine with a requeue action; the channels with their state, mark and last pull. Every page
and JSON endpoint depends on ``viewer`` (``orchestration.ui_airflow``): Airflow's own session or
token, and the tenants that user may see; nothing answers without them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import psycopg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from include.album.admin.pages import album_card, e, page, previews
from include.album.orchestration.ui_airflow import Viewer, viewer
from include.album.stores import db

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (240, 240)
ALBUMS_PER_PAGE = 50

ViewerDep = Annotated[Viewer, Depends(viewer)]


@contextmanager
def _database() -> Iterator[psycopg.Connection]:
    from include.album.orchestration.connections import albums_db, load_settings

    with albums_db(load_settings()) as conn:
        yield conn


def _tenant(who: Viewer, tenant: str | None, conn: psycopg.Connection) -> tuple[str, list[str]]:
    """The tenant asked for (default: the first the viewer sees) and every tenant the viewer sees."""
    known = [t["id"] for t in db.fetch_all(conn, "tenants_all")]
    visible = [t for t in known if who.sees(t)]
    if tenant is None:
        if not visible:
            raise HTTPException(403, f"user {who.name} sees no tenant (Variable telegram_albums_ui_tenants)")
        return visible[0], visible
    if tenant not in known:
        raise HTTPException(404, f"no such tenant {tenant!r}" + (f"; yours: {', '.join(visible)}" if visible else ""))
    if tenant not in visible:
        raise HTTPException(403, f"user {who.name} may not see tenant {tenant}")
    return tenant, visible


def _nav(tenant: str, visible: list[str], here: str) -> str:
    links = " ".join(f'<a href="{here}?{urlencode({"tenant": t})}"{" aria-current=page" if t == tenant else ""}>'
                     f"{e(t)}</a>" for t in visible)
    return (f'<nav><a href="./?tenant={e(tenant)}">Albums</a><a href="quarantine?tenant={e(tenant)}">Quarantine</a>'
            f'<a href="channels?tenant={e(tenant)}">Channels</a> · tenants: {links}</nav>'
            f'<form class="search" action="search"><input type="hidden" name="tenant" value="{e(tenant)}">'
            f'<input name="q" placeholder="search this tenant" size="40"> <button>Search</button></form>')


def _cards(conn: psycopg.Connection, tenant: str, albums: list[dict]) -> str:
    def src(item: dict) -> str | None:
        return f"media/{item['album_id']}/{item['position']}?{urlencode({'tenant': tenant})}" \
            if item["s3_key"] else None

    ids = [a["id"] for a in albums]
    runs: dict[int, list[dict]] = {album_id: [] for album_id in ids}
    for row in db.fetch_all(conn, "album_runs_of", {"album_ids": ids, "per_album": 3}):
        runs[row["album_id"]].append(row)
    items = previews(conn, ids)
    cards = [album_card(a, items[a["id"]], src, extra=_produced_by(runs[a["id"]])) for a in albums]
    return f'<div class="cards">{"".join(cards)}</div>'


def _require_album_of(conn: psycopg.Connection, album_id: int, tenant: str) -> None:
    owners = {r["tenant_id"] for r in db.fetch_all(conn, "album_tenants", {"album_id": album_id})}
    if tenant not in owners:
        raise HTTPException(404, f"album {album_id} is not one of tenant {tenant}'s")


def _produced_by(runs: list[dict]) -> str:
    """Links into the grid: the album's enrich task in the runs that published it, newest first
    (``album_runs``, written by the tasks as they ran)."""
    links = [f'<a target="_top" href="../dags/{quote(r["dag_id"])}/runs/{quote(r["run_id"])}/tasks/'
             f'{quote(r["task_id"])}/mapped/{r["map_index"]}">{e(r["run_id"])}</a>' for r in runs]
    return f'<p class="runs">enriched by {", ".join(links)}</p>' if links else '<p class="runs">not enriched yet</p>'


router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def albums(who: ViewerDep, tenant: str | None = None) -> str:
    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        rows = db.fetch_all(conn, "tenant_albums", {"tenant_id": tenant, "limit": ALBUMS_PER_PAGE})
        body = _cards(conn, tenant, rows)
    return page(f"Albums of {tenant}", f"<h1>Albums of {e(tenant)} ({len(rows)})</h1>"
                                        f"{_nav(tenant, visible, './')}{body}")

@router.get("/api/albums")
def albums_json(who: ViewerDep, tenant: str | None = None) -> list[dict[str, Any]]:
    with _database() as conn:
        tenant, _ = _tenant(who, tenant, conn)
        rows = db.fetch_all(conn, "tenant_albums", {"tenant_id": tenant, "limit": ALBUMS_PER_PAGE})
    return [{"album_id": r["id"], "channel_id": r["channel_id"], "username": r["username"],
             "status": r["status"], "caption": r["caption_text"], "items_count": r["items_count"],
             "posted_at": r["posted_at"].isoformat(),
             "labels": ((r["meta"] or {}).get("enrichment") or {}).get("vision_labels", [])} for r in rows]

@router.get("/media/{album_id}/{position}")
def thumbnail(who: ViewerDep, album_id: int, position: int, tenant: str) -> Response:
    from PIL import Image

    from include.album.orchestration.connections import load_settings, media_store

    with _database() as conn:
        _tenant(who, tenant, conn)
        _require_album_of(conn, album_id, tenant)
        items = {i["position"]: i for i in previews(conn, [album_id])[album_id]}
    if position not in items or not items[position]["s3_key"]:
        raise HTTPException(404, f"album {album_id} has no preview at position {position}")
    from botocore.exceptions import ClientError
    from PIL import UnidentifiedImageError

    key = items[position]["s3_key"]
    try:
        image = Image.open(io.BytesIO(media_store(load_settings()).get(key)))
        image.thumbnail(THUMBNAIL_SIZE)
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=80)
    except ClientError as exc:  # NoSuchKey above all: reconcile (the refresh DAG) puts it back
        raise HTTPException(404, f"{key} is not in S3 ({exc.response['Error'].get('Code')})") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise HTTPException(404, f"{key} is not an image the view can show ({exc})") from None
    return Response(out.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})

@router.get("/search", response_class=HTMLResponse)
def search(who: ViewerDep, tenant: str, q: Annotated[str, Query(min_length=1)]) -> str:
    from include.album.orchestration.connections import load_settings, search_index

    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        with search_index(load_settings()) as index:
            hits = index.search(tenant, q, limit=20)
        ids = list(dict.fromkeys(h.album_id for h in hits if h.album_id is not None))
        rows = {r["id"]: r for r in db.fetch_all(conn, "albums_by_ids", {"album_ids": ids})}
        body = _cards(conn, tenant, [rows[i] for i in ids if i in rows])
    found = f"{len(ids)} album(s)" if ids else "no results: nothing matches well enough"
    return page(f"Search {q}", f"<h1>Search in {e(tenant)}: {e(q)}</h1>{_nav(tenant, visible, './')}"
                               f"<p>{found}</p>{body}")

@router.get("/quarantine", response_class=HTMLResponse)
def quarantine(who: ViewerDep, tenant: str | None = None) -> str:
    from include.album.steps.quarantine import quarantined

    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        rows = quarantined(conn)
        owned = {(r["album_id"], r["tenant_id"]) for r in db.fetch_all(
            conn, "tenants_of_albums", {"album_ids": [r["album_id"] for r in rows]})}
        rows = [r for r in rows if (r["album_id"], tenant) in owned]
    action = (lambda r: f'<form method="post" action="quarantine/{r["album_id"]}/requeue?tenant={e(tenant)}">'
              f'<button>Requeue</button></form>') if who.may_edit else (lambda r: "")
    table = "".join(f'<tr data-album="{r["album_id"]}"><td>{r["album_id"]}</td><td>@{e(r["username"] or "")}'
                    f'</td><td>{e(r["step"])}</td><td>{r["attempts"]}</td><td>{e(r["error"])}</td>'
                    f"<td>{action(r)}</td></tr>" for r in rows)
    body = (f"<table><tr><th>album</th><th>channel</th><th>step</th><th>attempts</th><th>error</th><th></th>"
            f"</tr>{table}</table>") if rows else "<p>no quarantined albums</p>"
    return page("Quarantine", f"<h1>Quarantine of {e(tenant)}</h1>{_nav(tenant, visible, 'quarantine')}{body}")

@router.post("/quarantine/{album_id}/requeue")
def requeue(who: ViewerDep, album_id: int, tenant: str) -> RedirectResponse:
    from include.album.steps.quarantine import requeue as release

    if not who.may_edit:
        raise HTTPException(403, f"user {who.name} may not edit DAG telegram_albums")
    with _database() as conn:
        _tenant(who, tenant, conn)
        _require_album_of(conn, album_id, tenant)
        released = release(conn, [album_id])
    log.info("user %s re-queued album %s: %s", who.name, album_id, released)
    return RedirectResponse(f"../../quarantine?{urlencode({'tenant': tenant})}", status_code=303)

@router.get("/channels", response_class=HTMLResponse)
def channels(who: ViewerDep, tenant: str | None = None) -> str:
    from include.album.admin.channels import history_line, list_channels

    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        rows = [r for r in list_channels(conn) if tenant in r["tenants"]]
    table = "".join(
        f"<tr><td>{r['id']}</td><td>@{e(r['username'] or '-')}</td><td>{e(r['title'])}</td>"
        f"<td>{e(r['state'])}{' (' + e(r['state_reason']) + ')' if r['state_reason'] else ''}</td>"
        f"<td>{r['hwm']}</td><td>{r['last_pulled_at'].isoformat() if r['last_pulled_at'] else '—'}</td>"
        f"<td>{e(r['last_error'] or '')}</td><td>{_media_state(r)}</td><td>{e(history_line(r) or '—')}</td>"
        f"</tr>" for r in rows)
    return page("Channels", f"<h1>Channels of {e(tenant)}</h1>{_nav(tenant, visible, 'channels')}<table><tr>"
                            f"<th>id</th><th>username</th><th>title</th><th>state</th><th>mark</th>"
                            f"<th>last pull</th><th>last error</th><th>media</th><th>history</th></tr>"
                            f"{table}</table>")


def create_app() -> FastAPI:
    app = FastAPI(title="Telegram albums", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    app.add_exception_handler(HTTPException, _error_page)
    return app


async def _error_page(request: Request, exc: HTTPException) -> Response:
    """An error as a page for the pages, as ``{"detail": ...}`` JSON for the JSON endpoints."""
    if "/api/" in request.url.path or "text/html" not in request.headers.get("accept", ""):
        return await http_exception_handler(request, exc)
    return HTMLResponse(page(f"{exc.status_code}", f"<h1>{exc.status_code}</h1><p>{e(str(exc.detail))}</p>"),
                        status_code=exc.status_code, headers=exc.headers)


def _media_state(row: dict) -> str:
    """A channel's media still to fetch again, and given up, for the channels table."""
    parts = []
    if row["media_waiting"]:
        parts.append(f"{row['media_waiting']} to fetch again after "
                     f"{row['media_next_try'].isoformat(timespec='minutes')} ({row['media_last_error']})")
    if row["media_given_up"]:
        parts.append(f"{row['media_given_up']} given up")
    return e("; ".join(parts) or "—")
