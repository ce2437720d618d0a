"""A static, self-contained HTML page of the albums: one card per album (``admin/pages.py``, as in
the Airflow UI's albums view).

Thumbnails are embedded (data URIs), so the file can be opened or mailed anywhere.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import psycopg
from PIL import Image

from include.album.admin.pages import album_card, page, previews
from include.album.stores import db
from include.album.stores.media import MediaStore

log = logging.getLogger(__name__)

THUMBNAIL_SIZE = (180, 180)

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


def write_album_report(conn: psycopg.Connection, store: MediaStore, path: Path) -> Path:
    albums = db.fetch_all(conn, "albums_with_items")
    items = previews(conn, [album["id"] for album in albums])
    cards = "".join(album_card(album, items[album["id"]],
                               lambda item: _thumbnail(store, item["s3_key"]) if item["s3_key"] else None)
                    for album in albums)
    path = Path(path)
    path.write_text(page("Albums", f'<h1>Albums ({len(albums)})</h1><div class="cards">{cards}</div>'),
                    encoding="utf-8")
    return path
