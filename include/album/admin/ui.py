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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import psycopg
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from include.album.admin.pages import album_card, e, page, previews, produced_by
from include.album.orchestration.ui_airflow import Viewer, viewer
from include.album.stores import db

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (240, 240)
ALBUMS_PER_PAGE = 50
MAX_ALBUMS_PER_PAGE = 200  # a page's thumbnails are read from S3 by the api-server
PDF_PREVIEW_WIDTH = 640
_PDFIUM = threading.Lock()  # PDFium is not thread-safe (pypdfium2's docs)

ViewerDep = Annotated[Viewer, Depends(viewer)]
PageSize = Annotated[int, Query(ge=1, le=MAX_ALBUMS_PER_PAGE, description="albums a page")]


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


def _nav(tenant: str, visible: list[str], here: str, root: str = "") -> str:
    """The view's links and search box; ``here``: this page, for the tenant links (a page within
    one tenant's data sends them to that tenant's albums); ``root``: the way up to the view's root."""
    links = " ".join(f'<a href="{here}?{urlencode({"tenant": t})}"{" aria-current=page" if t == tenant else ""}>'
                     f"{e(t)}</a>" for t in visible)
    query = urlencode({"tenant": tenant})
    return (f'<nav><a href="{root}./?{query}">Albums</a><a href="{root}quarantine?{query}">Quarantine</a>'
            f'<a href="{root}channels?{query}">Channels</a> · tenants: {links}</nav>'
            f'<form class="search" action="{root}search"><input type="hidden" name="tenant" value="{e(tenant)}">'
            f'<input name="q" placeholder="search this tenant" size="40"> <button>Search</button></form>')


def _cards(conn: psycopg.Connection, tenant: str, albums: list[dict], root: str = "") -> list[str]:
    """The albums' cards, each linking to its page; ``root``: the page's way up to the view's root."""
    def src(item: dict) -> str | None:
        return f"{root}media/{item['album_id']}/{item['position']}?{urlencode({'tenant': tenant})}" \
            if item["s3_key"] else None

    ids = [a["id"] for a in albums]
    runs: dict[int, list[dict]] = {album_id: [] for album_id in ids}
    for row in db.fetch_all(conn, "album_runs_of", {"album_ids": ids, "per_album": 3}):
        runs[row["album_id"]].append(row)
    items = previews(conn, ids)
    query = urlencode({"tenant": tenant})
    return [album_card(a, items[a["id"]], src, extra=produced_by(runs[a["id"]], root=f"{root}../"),
                       href=f"{root}album/{a['id']}?{query}", channel_href=f"{root}channel/{a['channel_id']}?{query}")
            for a in albums]


def _require_album_of(conn: psycopg.Connection, album_id: int, tenant: str) -> None:
    owners = {r["tenant_id"] for r in db.fetch_all(conn, "album_tenants", {"album_id": album_id})}
    if tenant not in owners:
        raise HTTPException(404, f"album {album_id} is not one of tenant {tenant}'s")


router = APIRouter()


@dataclass(frozen=True)
class AlbumPage:
    """A page of a tenant's albums, newest first, and the cursor of the next page (None: last)."""
    rows: list[dict]
    next: str | None


def _album_page(conn: psycopg.Connection, tenant: str, after: str | None, limit: int,
                channel_id: int | None = None) -> AlbumPage:
    """``limit`` albums after the cursor ``after`` (``id@posted_at`` of the previous page's last
    album: stable while albums are added)."""
    after_id, after_posted_at = None, None
    if after:
        try:
            album_id, _, posted = after.partition("@")
            after_id, after_posted_at = int(album_id), datetime.fromisoformat(posted)
        except ValueError:
            raise HTTPException(400, f"invalid page cursor {after!r}: follow the page's own \"next\" link") from None
    rows = db.fetch_all(conn, "tenant_albums", {"tenant_id": tenant, "channel_id": channel_id, "limit": limit,
                                                "after_id": after_id, "after_posted_at": after_posted_at})
    more = len(rows) > limit
    rows = rows[:limit]
    return AlbumPage(rows, f"{rows[-1]['id']}@{rows[-1]['posted_at'].isoformat()}" if more else None)


def _page_query(tenant: str, limit: int) -> dict:
    """A list's query string: its tenant, and its page size unless it is the default."""
    return {"tenant": tenant, **({"limit": limit} if limit != ALBUMS_PER_PAGE else {})}


def _timeline(conn: psycopg.Connection, tenant: str, found: AlbumPage, root: str, here: str, query: dict) -> str:
    """A page of albums as a timeline: a heading per day, the cards, and the next page's link."""
    parts, day, cards = [], None, _cards(conn, tenant, found.rows, root)
    for row, card in zip(found.rows, cards, strict=True):
        if row["posted_at"].date() != day:
            if day is not None:
                parts.append("</div>")
            day = row["posted_at"].date()
            parts.append(f'<h2 class="day">{day:%A %d %B %Y}</h2><div class="cards">')
        parts.append(card)
    parts.append("</div>" if found.rows else "<p>no albums yet</p>")
    if found.next:
        older = f"{here}?{urlencode({**query, 'after': found.next})}"
        parts.append(f'<p class="pages"><a rel="next" href="{e(older)}">older albums →</a></p>')
    return "".join(parts)


@router.get("/", response_class=HTMLResponse)
def albums(who: ViewerDep, tenant: str | None = None, after: str | None = None,
           limit: PageSize = ALBUMS_PER_PAGE) -> str:
    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        found = _album_page(conn, tenant, after, limit)
        body = _timeline(conn, tenant, found, "", "./", _page_query(tenant, limit))
    return page(f"Albums of {tenant}", f"<h1>Albums of {e(tenant)}</h1>{_nav(tenant, visible, './')}{body}")


@router.get("/api/albums")
def albums_json(who: ViewerDep, tenant: str | None = None, after: str | None = None,
                channel: int | None = None, limit: PageSize = ALBUMS_PER_PAGE) -> dict[str, Any]:
    """A page of albums, newest first; ``next`` is the ``after`` of the next page (null: none)."""
    with _database() as conn:
        tenant, _ = _tenant(who, tenant, conn)
        found = _album_page(conn, tenant, after, limit, channel)
    return {"albums": [{"album_id": r["id"], "channel_id": r["channel_id"], "username": r["username"],
                        "status": r["status"], "caption": r["caption_text"], "items_count": r["items_count"],
                        "posted_at": r["posted_at"].isoformat(),
                        "labels": ((r["meta"] or {}).get("enrichment") or {}).get("vision_labels", [])}
                       for r in found.rows],
            "next": found.next}


@router.get("/channel/{channel_id}", response_class=HTMLResponse)
def channel_albums(who: ViewerDep, channel_id: int, tenant: str, after: str | None = None,
                   limit: PageSize = ALBUMS_PER_PAGE) -> str:
    """One channel: its state, mark, history import, and its albums newest first."""
    from include.album.admin.channels import history_line, list_channels

    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        channel = next((r for r in list_channels(conn) if r["id"] == channel_id and tenant in r["tenants"]), None)
        if channel is None:
            raise HTTPException(404, f"channel {channel_id} is not one of tenant {tenant}'s")
        found = _album_page(conn, tenant, after, limit, channel_id)
        body = _timeline(conn, tenant, found, "../", str(channel_id), _page_query(tenant, limit))
    name = f"@{channel['username']}" if channel["username"] else str(channel_id)
    facts = [("Title", channel["title"]), ("State", channel["state"] + (f" ({channel['state_reason']})"
                                                                        if channel["state_reason"] else "")),
             ("Mark", channel["hwm"]), ("Last pull", channel["last_pulled_at"] or "—"),
             ("Media", _media_state(channel)), ("History", history_line(channel) or "not imported")]
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts)
    nav = _nav(tenant, visible, "../", "../")
    return page(name, f'<h1>{e(name)}</h1>{nav}<dl class="facts">{details}</dl>{body}')


@router.get("/album/{album_id}", response_class=HTMLResponse)
def album(who: ViewerDep, album_id: int, tenant: str) -> str:
    from include.album.admin.album_page import album_page

    with _database() as conn:
        tenant, visible = _tenant(who, tenant, conn)
        _require_album_of(conn, album_id, tenant)
        found = db.fetch_all(conn, "albums_by_ids", {"album_ids": [album_id]})
        if not found:
            raise HTTPException(404, f"album {album_id} was deleted")
        items = db.fetch_all(conn, "album_page_items", {"album_id": album_id, "position": None})
        runs = db.fetch_all(conn, "album_runs_of", {"album_ids": [album_id], "per_album": 10})
    return page(f"Album {album_id}", _nav(tenant, visible, "../", "../") + album_page(found[0], items, runs, tenant))


def _item(conn: psycopg.Connection, who: Viewer, album_id: int, position: int, tenant: str) -> dict:
    _tenant(who, tenant, conn)
    _require_album_of(conn, album_id, tenant)
    item = db.fetch_one(conn, "album_page_items", {"album_id": album_id, "position": position})
    if item is None or not item["s3_key"]:
        raise HTTPException(404, f"album {album_id} has no stored file at position {position}")
    return item


@router.get("/file/{album_id}/{position}")
def item_file(who: ViewerDep, request: Request, album_id: int, position: int, tenant: str,
              download: bool = False) -> Response:
    """An item's file as stored, with HTTP range requests (a video seeks and plays); with
    ``download`` as an attachment under its file name."""
    from botocore.exceptions import ClientError

    from include.album.orchestration.connections import load_settings, media_store

    with _database() as conn:
        item = _item(conn, who, album_id, position, tenant)
    store = media_store(load_settings())
    asked = request.headers.get("range")
    try:
        found = store.s3.get_object(Bucket=store.bucket, Key=item["s3_key"], **({"Range": asked} if asked else {}))
    except ClientError as exc:
        code = exc.response["Error"].get("Code")
        if code == "InvalidRange":
            raise HTTPException(416, f"range {asked} is outside the file") from None
        raise HTTPException(404, f"{item['s3_key']} is not in S3 ({code})") from None
    headers = {"Accept-Ranges": "bytes", "Content-Length": str(found["ContentLength"]),
               "Cache-Control": "private, max-age=300"}
    if found.get("ContentRange"):
        headers["Content-Range"] = found["ContentRange"]
    if download:
        name = item["file_name"] or f"{item['message_id']}{Path(item['s3_key']).suffix}"
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return StreamingResponse(found["Body"].iter_chunks(64 * 1024), status_code=206 if asked else 200,
                             media_type=item["mime"] or found.get("ContentType"), headers=headers)


@router.get("/preview/{album_id}/{position}")
def pdf_preview(who: ViewerDep, album_id: int, position: int, tenant: str) -> Response:
    """A PDF item's first page as an image."""
    from include.album.orchestration.connections import load_settings, media_store

    with _database() as conn:
        item = _item(conn, who, album_id, position, tenant)
    if item["mime"] != "application/pdf":
        raise HTTPException(404, f"album {album_id}'s item {position} is not a PDF")
    name = item["file_name"] or "the PDF"
    try:
        png = first_page_png(media_store(load_settings()).get(item["s3_key"]))
    except ValueError as exc:
        raise HTTPException(404, f"{name} {exc}") from None
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=300"})


def first_page_png(data: bytes) -> bytes:
    """A PDF's first page, ``PDF_PREVIEW_WIDTH`` wide, as PNG; ``ValueError`` saying why there is none.

    PDFium is not thread-safe, and the api-server serves sync routes from a thread pool: an album
    of two PDFs asks for both previews at once, and two renders side by side corrupt the heap
    (glibc aborts the process). One render at a time."""
    import pypdfium2

    with _PDFIUM:
        try:
            document = pypdfium2.PdfDocument(data)
        except pypdfium2.PdfiumError as exc:
            raise ValueError(f"cannot be read ({exc})") from None
        try:
            if len(document) == 0:
                raise ValueError("has no page to show")
            image = document[0].render(scale=PDF_PREVIEW_WIDTH / document[0].get_width()).to_pil()
        finally:
            document.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG")
    return out.getvalue()


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
        body = f'<div class="cards">{"".join(_cards(conn, tenant, [rows[i] for i in ids if i in rows]))}</div>'
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
        f"<tr><td>{r['id']}</td><td><a href=\"channel/{r['id']}?{urlencode({'tenant': tenant})}\">"
        f"@{e(r['username'] or '-')}</a></td><td>{e(r['title'])}</td>"
        f"<td>{e(r['state'])}{' (' + e(r['state_reason']) + ')' if r['state_reason'] else ''}</td>"
        f"<td>{r['hwm']}</td><td>{r['last_pulled_at'].isoformat() if r['last_pulled_at'] else '—'}</td>"
        f"<td>{e(r['last_error'] or '')}</td><td>{e(_media_state(r))}</td><td>{e(history_line(r) or '—')}</td>"
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
    return "; ".join(parts) or "—"
