"""HTML of albums, one card per album: the Airflow UI's albums view and the demo's static report.

Plain HTML and CSS, escaped here; where thumbnails come from is the caller's (``src``): URLs
served by the albums view, or data URIs for a file that opens anywhere. ``previews`` reads what
the cards show of their items, for a page of albums in one query.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from urllib.parse import quote

import psycopg

from include.album.domain.summary import model_summary
from include.album.steps.assembly import vision_input
from include.album.stores import db

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; background: #f6f6f3; color: #1b1b1b; }
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
nav a { margin-right: 1rem; } form.search { margin: 1rem 0; } table { border-collapse: collapse; font-size: .85rem; }
td, th { border-bottom: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }
.items { display: flex; flex-direction: column; gap: 1.5rem; max-width: 1000px; } .item { background: #fff;
border-radius: 8px; padding: 1rem; } .item h3 { margin: 0 0 .5rem; font-size: .9rem; } .full { max-width: 100%;
max-height: 80vh; display: block; } img.pdf { max-width: 320px; border: 1px solid #ccc; display: block; }
.skip { overflow-wrap: anywhere; font-size: .75rem; } .pages { margin: 1rem 0; } h2.day { font-size: 1rem;
margin: 1.5rem 0 .5rem; color: #555; }
"""

e = html.escape


def previews(conn: psycopg.Connection, album_ids: Sequence[int]) -> dict[int, list[dict]]:
    """Each album's items in position order, with the S3 key of their preview (the image, or a
    video's thumbnail: ``vision_input``) or why there is none (``skip_reason``)."""
    found: dict[int, list[dict]] = {album_id: [] for album_id in album_ids}
    for item in db.fetch_all(conn, "page_album_items", {"album_ids": list(album_ids)}):
        target = vision_input(item)
        waiting = None
        if target.sha256 is None and target.skip_reason is None and item["retry_after"] is not None:
            waiting = (f"fetched again after {item['retry_after'].isoformat(timespec='minutes')} "
                       f"({item['retry_tries']} failed tries; {(item['retry_error'] or '').split(':')[0]})")
        found[item["album_id"]].append({**item, "s3_key": target.s3_key, "skip_reason": target.skip_reason,
                                        "waiting": waiting})
    return found


def album_card(album: dict, items: Sequence[dict], src: Callable[[dict], str | None], extra: str = "",
               href: str | None = None, channel_href: str | None = None) -> str:
    """One album: its date, channel, thumbnails in position order, caption, summary, labels, OCR
    text, status.

    ``items`` are the album's ``previews``; ``src(item)`` is an item's thumbnail URL, or None
    for a placeholder; ``href`` the album's own page and ``channel_href`` its channel's, if
    there are such pages."""
    enrichment = (album.get("meta") or {}).get("enrichment") or {}
    figures = []
    for item in items:
        caption = f"#{item['position']} {item['media_kind'] or 'text'}"
        url = src(item)
        body = f'<img src="{e(url)}" alt="{e(caption)}">' if url else \
            f'<div class="skip">{e(item.get("skip_reason") or item.get("waiting") or "no preview")}</div>'
        figures.append(f'<figure data-position="{item["position"]}">{body}{e(caption)}</figure>')
    labels = "".join(f'<span class="label">{e(label)}</span>' for label in enrichment.get("vision_labels", []))
    counts = (f"{enrichment.get('items_analyzed', 0)} analysed, {enrichment.get('items_skipped', 0)} skipped"
              if enrichment else "not assembled yet")
    rows = [("Caption", album["caption_text"] or "—"), ("Summary", model_summary(enrichment) or "—"),
            ("OCR text", enrichment.get("ocr_text") or "—"), ("Items", f"{album['items_count']}: {counts}")]
    details = "".join(f"<dt>{e(k)}</dt><dd>{e(str(v))}</dd>" for k, v in rows)
    posted = f' · <time>{album["posted_at"]:%Y-%m-%d %H:%M}</time>' if album.get("posted_at") else ""
    title = f"album {album['id']}"
    title = f'<a href="{e(href)}">{title}</a>' if href else title
    channel = e(f"@{album['username']}" if album["username"] else str(album["channel_id"]))
    channel = f'<a class="channel" href="{e(channel_href)}">{channel}</a>' if channel_href else channel
    return (f'<section class="card" data-album="{album["id"]}"><span class="status {e(album["status"])}">'
            f'{e(album["status"])}</span><h2>{channel} · {title} · '
            f'{e(album["album_kind"])}{posted}</h2>'
            f"<div class=\"thumbs\">{''.join(figures)}</div>"
            f"<div>{labels}</div><dl>{details}</dl>{extra}</section>")


def produced_by(runs: Sequence[dict], root: str = "../") -> str:
    """Links to the album's enrich task in the runs that published it, newest first
    (``album_runs``, written by the tasks as they ran); followed from inside Airflow's frame too
    (``data-top``: ``page``'s script). ``root``: the page's way up to Airflow's root."""
    links = [f'<a data-top href="{root}dags/{quote(r["dag_id"])}/runs/{quote(r["run_id"])}/tasks/'
             f'{quote(r["task_id"])}/mapped/{r["map_index"]}">{e(r["run_id"])}</a>' for r in runs]
    return f'<p class="runs">enriched by {", ".join(links)}</p>' if links else '<p class="runs">not enriched yet</p>'


# Airflow shows the view in a sandboxed frame that may not navigate the top window: a link marked
# ``data-top`` is followed by an anchor in the top document (the same origin), which may. Outside
# Airflow's UI it is an ordinary link.
TOP_LINKS_SCRIPT = """
document.addEventListener("click", function (event) {
  var link = event.target.closest && event.target.closest("a[data-top]");
  if (!link || window.top === window) return;
  try {
    var anchor = window.top.document.createElement("a");
    anchor.href = link.href;
    window.top.document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    event.preventDefault();
  } catch (error) { /* another origin: the plain link stays */ }
});
"""


def page(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}<script>{TOP_LINKS_SCRIPT}</script></body></html>\n")
