"""One album's page in the albums view: every item full size in position order, what vision read
of each, and where the album comes from (its channel, its post on Telegram, the runs that
processed it).

Photos are shown as they were stored; videos play (the view serves them with HTTP range
requests); a GIF (an MP4 on Telegram) loops muted; a document shows its file name and size, a
first-page preview for a PDF, and a download. The HTML is built here; ``ui.py`` serves it and
the files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from urllib.parse import urlencode

from include.album.admin.pages import e, produced_by
from include.album.domain.summary import model_summary


def telegram_link(username: str | None, channel_id: int, message_id: int) -> str:
    """The post on Telegram: ``t.me/<username>/<id>``, or ``t.me/c/<channel id>/<id>`` for a
    channel without a public username (members only)."""
    return f"https://t.me/{username}/{message_id}" if username else f"https://t.me/c/{channel_id}/{message_id}"


def human_size(size: int | None) -> str:
    if size is None:
        return "size unknown"
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def item_html(item: dict, url: Callable[[str, dict], str]) -> str:
    """One item: its media as a browser shows it, then what vision read of it. ``url(route,
    item)`` is the view's address for the item: its file (``file``, ``download``), its thumbnail
    (``media``: a video's poster) or a PDF's first page (``preview``)."""
    kind, mime = item["media_kind"] or "text", item["mime"] or ""
    if not item["s3_key"]:
        reason = item["media_skip_reason"] or ("no media" if kind == "text" else "not stored yet")
        body = f'<div class="skip">{e(kind)}: {e(reason)}</div>'
    elif kind == "photo" or mime.startswith("image/"):
        body = f'<img class="full" src="{e(url("file", item))}" alt="item {item["position"]}">'
    elif kind == "gif":
        body = (f'<video class="full" src="{e(url("file", item))}" autoplay loop muted playsinline></video>')
    elif kind == "video" or mime.startswith("video/"):
        poster = f' poster="{e(url("media", item))}"' if item["thumb_s3_key"] else ""
        body = f'<video class="full" src="{e(url("file", item))}" controls preload="metadata"{poster}></video>'
    else:
        name = item["file_name"] or f"message {item['message_id']}"
        preview = (f'<img class="pdf" src="{e(url("preview", item))}" alt="first page of {e(name)}" '
                   f'onerror="this.replaceWith(\'(no preview: \' + this.alt + \' cannot be shown)\')">'
                   if mime == "application/pdf" else "")
        body = (f'<div class="document">{preview}<p><a href="{e(url("download", item))}" download>{e(name)}</a>'
                f" · {e(mime or 'unknown type')} · {human_size(item['size'])}</p></div>")
    return (f'<article class="item" data-position="{item["position"]}"><h3>#{item["position"]} · {e(kind)}</h3>'
            f"{body}{_vision(item)}</article>")


def _vision(item: dict) -> str:
    result = item["vision"]
    if result is None:
        image = item["media_kind"] in ("photo", "video", "gif") or (item["mime"] or "").startswith("image/")
        why = item["vision_skip"] or ("not analysed yet" if image else "not an image")
        return f'<p class="vision">vision: {e(why)}</p>'
    labels = "".join(f'<span class="label">{e(label)}</span>' for label in result.get("labels") or [])
    ocr = (result.get("ocr") or {}).get("text") or ""
    return (f'<dl class="vision"><dt>Vision</dt><dd>{e(result.get("kind") or "?")} {labels}</dd>'
            + (f"<dt>Text on it</dt><dd>{e(ocr)}</dd>" if ocr.strip() else "") + "</dl>")


def album_page(album: dict, items: Sequence[dict], runs: Sequence[dict], tenant: str) -> str:
    """The page's body: header, facts, the items, the runs."""
    def url(route: str, item: dict) -> str:
        query = {"tenant": tenant, **({"download": 1} if route == "download" else {})}
        return f"../{'file' if route == 'download' else route}/{album['id']}/{item['position']}?{urlencode(query)}"

    first = min((item["message_id"] for item in items), default=None)
    channel = f"@{album['username']}" if album["username"] else str(album["channel_id"])
    on_telegram = (f'<a href="{e(telegram_link(album["username"], album["channel_id"], first))}" '
                   f'rel="noopener" target="_blank" data-top>the post on Telegram</a>' if first is not None else "")
    enrichment = (album.get("meta") or {}).get("enrichment") or {}
    facts = [("Posted", album["posted_at"].strftime("%Y-%m-%d %H:%M UTC")), ("Status", album["status"]),
             ("Caption", album["caption_text"] or "—"), ("Summary", model_summary(enrichment) or "—")]
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in facts)
    channel_link = f'<a href="../channel/{album["channel_id"]}?{urlencode({"tenant": tenant})}">{e(channel)}</a>'
    return (f'<h1>Album {album["id"]} · {channel_link} · {e(album["album_kind"])}</h1>'
            f'<p><a href="../?{urlencode({"tenant": tenant})}">all albums</a> · {on_telegram}</p>'
            f'<dl class="facts">{details}</dl>{produced_by(runs, root="../../")}'
            f'<div class="items">{"".join(item_html(item, url) for item in items)}</div>')
