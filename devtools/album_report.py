"""A static, self-contained HTML page of the albums: one card per album.

Thumbnails are embedded (data URIs), so the file can be opened or mailed anywhere.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path

import psycopg
from PIL import Image

from include.album.steps.assembly import vision_input
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (180, 180)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; background: #f6f6f3; color: #1b1b1b; }
h1 { font-size: 1.4rem; } .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr));
gap: 1rem; } .card { background: #fff; border-radius: 8px; padding: 1rem; box-shadow: 0 1px 3px #0002; }
.card h2 { font-size: 1rem; margin: 0 0 .5rem; } .status { float: right; font-size: .8rem; padding: .1rem .5rem;
border-radius: 1rem; background: #ddd; } .assembled { background: #cdeccd; } .partial { background: #f6e3b4; }
.open { background: #e4e4f7; } .thumbs { display: flex; gap: .4rem; flex-wrap: wrap; margin: .5rem 0; }
figure { margin: 0; text-align: center; font-size: .7rem; color: #555; } figure img { display: block;
max-width: 120px; max-height: 120px; border-radius: 4px; } .skip { width: 120px; height: 80px; display: flex;
align-items: center; justify-content: center; background: #eee; border-radius: 4px; padding: .2rem; }
dl { font-size: .85rem; margin: .5rem 0 0; } dt { font-weight: 600; } dd { margin: 0 0 .4rem; white-space: pre-wrap; }
.label { display: inline-block; background: #eef; border-radius: 3px; padding: 0 .3rem; margin: 0 .2rem .2rem 0; }
"""


def _thumbnail(store: MediaStore, key: str) -> str | None:
    try:
        image = Image.open(io.BytesIO(store.get(key)))
        image.thumbnail(THUMBNAIL_SIZE)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=80)
    except Exception as exc:  # noqa: BLE001 - a broken image shows as a placeholder, not a broken report
        log.info("no thumbnail for %s: %s", key, exc)
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _card(conn: psycopg.Connection, store: MediaStore, album: dict) -> str:
    e = html.escape
    enrichment = (album["meta"] or {}).get("enrichment") or {}
    figures = []
    for item in db.fetch_all(conn, "album_items_for_vision", {"album_id": album["id"]}):
        target = vision_input(item)
        src = _thumbnail(store, target.s3_key) if target.s3_key else None
        caption = f"#{item['position']} {item['media_kind'] or 'text'}"
        body = f'<img src="{src}" alt="{e(caption)}">' if src else \
            f'<div class="skip">{e(target.skip_reason or "no preview")}</div>'
        figures.append(f"<figure>{body}{e(caption)}</figure>")
    labels = "".join(f'<span class="label">{e(label)}</span>' for label in enrichment.get("vision_labels", []))
    counts = (f"{enrichment.get('items_analyzed', 0)} analysed, {enrichment.get('items_skipped', 0)} skipped"
              if enrichment else "not assembled yet")
    rows = [("Caption", album["caption_text"] or "—"), ("Summary", enrichment.get("vision_summary") or "—"),
            ("OCR text", enrichment.get("ocr_text") or "—"), ("Items", f"{album['items_count']}: {counts}")]
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in rows)
    return (f'<section class="card"><span class="status {e(album["status"])}">{e(album["status"])}</span>'
            f"<h2>@{e(album['username'] or str(album['channel_id']))} · album {album['id']} · "
            f"{e(album['album_kind'])}</h2><div class=\"thumbs\">{''.join(figures)}</div>"
            f"<div>{labels}</div><dl>{details}</dl></section>")


def write_album_report(conn: psycopg.Connection, store: MediaStore, path: Path) -> Path:
    albums = db.fetch_all(conn, "albums_with_items")
    cards = "".join(_card(conn, store, album) for album in albums)
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Albums</title>'
            f"<style>{_STYLE}</style></head><body><h1>Albums ({len(albums)})</h1>"
            f'<div class="cards">{cards}</div></body></html>\n')
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
