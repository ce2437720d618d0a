"""Vision quality on the vision set (devtools/vision_set.py, tests/data/vision_truth.json).

    .venv/bin/python -m devtools vision [--baseline OTHER_CHECKOUT]

Per kind: kind accuracy, OCR character error rate on images with text, OCR words invented on
images without text, label precision against the truth's tags, distinct descriptions and
seconds per image. Then retrieval: the albums are summarised (``summary.aggregate``), turned
into the pipeline's own Qdrant points (album text, post texts, descriptors of text-less
points) and searched with the pipeline's search, dense only and hybrid side by side;
recall@1/@5 and MRR (ties ranked pessimistically) over the queries, over the queries whose
album has no caption, and over those whose words stand in the album's caption or OCR text.
``--baseline`` measures another checkout's local provider (its
``include/album/providers/vision.py``, or its ``vision/`` package) in the same run, side by
side, through this checkout's summary, indexing and search.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from devtools import vision_set

TENANT = "bench"


def _provider_module(root: Path | None) -> ModuleType:
    if root is None:
        from include.album.providers import vision

        return vision
    providers = root / "include" / "album" / "providers"
    path = providers / "vision.py"
    if (providers / "vision" / "__init__.py").exists():  # the package: its imports of itself renamed
        path = _renamed_package(providers / "vision")
    elif not path.exists():
        raise SystemExit(f"{path} does not exist: --baseline takes a checkout of this project")
    spec = importlib.util.spec_from_file_location("baseline_vision", path,
                                                  submodule_search_locations=[str(path.parent)]
                                                  if path.name == "__init__.py" else None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def _renamed_package(package: Path) -> Path:
    """A copy of another checkout's ``providers/vision/`` package as ``baseline_vision``, its
    imports of itself pointed at the copy (its other imports resolve in this checkout)."""
    copy = Path(tempfile.mkdtemp(prefix="vision-baseline-")) / "baseline_vision"
    copy.mkdir()
    for source in package.glob("*.py"):
        text = source.read_text(encoding="utf-8").replace("include.album.providers.vision.", "baseline_vision.")
        (copy / source.name).write_text(text, encoding="utf-8")
    return copy / "__init__.py"


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(read: str, truth: str) -> float:
    from include.album.domain.summary import normalise

    truth = normalise(truth)
    return edit_distance(normalise(read), truth) / max(1, len(truth))


def acceptable_labels(image: dict) -> set[str]:
    """A label is right when the truth's tags hold it, or it is the image's kind."""
    return {tag.lower() for tag in image["tags"]} | {image["kind"]}


def analyse_all(provider, images: list[dict]) -> list[dict]:
    results = []
    for image in images:
        started = time.perf_counter()
        result = provider.analyse(image["data"])
        results.append({**result, "seconds": time.perf_counter() - started})
    return results


def image_table(images: list[dict], results: list[dict]) -> dict[str, dict]:
    rows: dict[str, dict] = defaultdict(lambda: defaultdict(list))
    for image, result in zip(images, results, strict=True):
        for kind in (image["kind"], "all"):
            row = rows[kind]
            row["correct_kind"].append(result["kind"] == image["kind"])
            read = (result.get("ocr") or {}).get("text") or ""
            if image["text"]:
                row["cer"].append(character_error_rate(read, image["text"]))
            else:
                row["false_words"].append(len(read.split()))
            labels = result.get("labels") or []
            row["labels"].append(len(labels))
            row["right_labels"].append(sum(label in acceptable_labels(image) for label in labels))
            row["descriptions"].append(result["description"])
            row["seconds"].append(result["seconds"])
    table = {}
    for kind, row in sorted(rows.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        table[kind] = {
            "images": len(row["correct_kind"]),
            "kind_accuracy": sum(row["correct_kind"]) / len(row["correct_kind"]),
            "ocr_cer": sum(row["cer"]) / len(row["cer"]) if row["cer"] else None,
            "false_ocr_words": sum(row["false_words"]) if row["false_words"] else None,
            "label_precision": sum(row["right_labels"]) / max(1, sum(row["labels"])),
            "labels_per_image": sum(row["labels"]) / len(row["labels"]),
            "distinct_descriptions": len(set(row["descriptions"])) / len(row["descriptions"]),
            "seconds_per_image": sum(row["seconds"]) / len(row["seconds"]),
        }
    return table


def album_documents(truth: dict, by_name: dict[str, dict], key: str) -> list:
    """The pipeline's Qdrant documents for the set's albums, as enrichment and indexing write them."""
    from include.album.domain.summary import ItemVision, aggregate
    from include.album.steps.indexing import album_text, post_text
    from include.album.stores.qdrant import IndexDoc, album_point_id, post_point_id, timestamp_fields

    docs, now = [], datetime(2026, 12, 2, tzinfo=UTC)
    for album in truth["albums"]:
        results = [by_name[name] for name in album["images"]]
        items = [ItemVision(position=n, message_id=album["id"] * 100 + n, result=r) for n, r in enumerate(results)]
        summary = {**aggregate(items, posted_at=now, assembled_at=now, partial=False), "provider_key": key}
        base = {"album_id": album["id"], "channel_id": 1, "tenant_ids": [TENANT], **timestamp_fields(now)}
        docs.append(IndexDoc(album_point_id(album["id"]), album_text([album["caption"]], summary),
                             {**base, "kind": "album", "labels": summary["vision_labels"]}))
        for n, result in enumerate(results):
            caption = album["caption"] if n == 0 else ""
            docs.append(IndexDoc(post_point_id(1, album["id"] * 100 + n), post_text(caption, result),
                                 {**base, "kind": "post", "message_id": album["id"] * 100 + n, "position": n,
                                  "labels": result.get("labels") or []}))
    return docs


def pessimistic_rank(hits: list, album_id: int) -> int | None:
    """The album's 1-based rank, every other album with the same score counted ahead of it: albums
    whose points are the same descriptor ("album: photo, green") cannot be told apart, and a lucky
    order must not count as found. None when it is not among the hits."""
    scores = {hit.album_id: hit.score for hit in hits}  # search returns one hit per album
    if album_id not in scores:
        return None
    return sum(1 for score in scores.values() if score >= scores[album_id] - 1e-6)


def retrieval(truth: dict, images: list[dict], results: list[dict], key: str, embedder, mode: str) -> dict:
    """Ranks of the queries' albums, searched as ``mode`` (``embedding_benchmark.MODES``)."""
    from devtools.embedding_benchmark import DENSE_ONLY_FLOOR, Floor, open_index

    by_name = {image["name"]: result for image, result in zip(images, results, strict=True)}
    index = open_index(mode, Floor(embedder, DENSE_ONLY_FLOOR) if mode == "dense" else embedder, name="vision_bench")
    index.upsert(album_documents(truth, by_name, key))
    captionless = {album["id"] for album in truth["albums"] if not album["caption"]}
    scores: dict[str, list[int | None]] = {"all": [], "caption-less albums": [], "words in target": []}
    for query in truth["queries"]:
        rank = pessimistic_rank(index.search(TENANT, query["text"], limit=10), query["album"])
        scores["all"].append(rank)
        if query["album"] in captionless:
            scores["caption-less albums"].append(rank)
        if query.get("words_in_target"):
            scores["words in target"].append(rank)
    return {group: {"queries": len(ranks),
                    "recall@1": sum(r == 1 for r in ranks) / len(ranks),
                    "recall@5": sum(r is not None and r <= 5 for r in ranks) / len(ranks),
                    "mrr": sum(1 / r for r in ranks if r) / len(ranks)} for group, ranks in scores.items()}


def _cell(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def print_tables(named: list[tuple[str, dict, dict]]) -> None:
    print("| provider | kind | images | kind accuracy | OCR CER | false OCR words | label precision "
          "| labels/image | distinct descriptions | s/image |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, table, _ in named:
        for kind, row in table.items():
            print(f"| {name} | {kind} | {row['images']} | {_cell(row['kind_accuracy'])} | {_cell(row['ocr_cer'], 3)} "
                  f"| {_cell(row['false_ocr_words'])} | {_cell(row['label_precision'])} "
                  f"| {_cell(row['labels_per_image'], 1)} | {_cell(row['distinct_descriptions'])} "
                  f"| {_cell(row['seconds_per_image'])} |")
    print()
    print("| provider | search | queries | n | recall@1 | recall@5 | MRR |")
    print("|---|---|---|---|---|---|---|")
    for name, _, searches in named:
        for mode, found in searches.items():
            for group, row in found.items():
                print(f"| {name} | {mode} | {group} | {row['queries']} | {_cell(row['recall@1'])} "
                      f"| {_cell(row['recall@5'])} | {_cell(row['mrr'])} |")


def main(baseline: Path | None = None, out_dir: Path | None = None) -> int:
    from include.album.providers.embeddings import default_embedder

    try:
        images = vision_set.build(out_dir)
    except vision_set.MissingSource as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    truth, embedder = vision_set.truth(), default_embedder()
    candidates = [("baseline", baseline)] if baseline else []
    named = []
    for name, root in [*candidates, ("this checkout", None)]:
        provider = _provider_module(root).LocalVision()
        results = analyse_all(provider, images)
        named.append((f"{name} ({provider.key})", image_table(images, results),
                      {mode: retrieval(truth, images, results, provider.key, embedder, mode)
                       for mode in ("dense", "hybrid")}))
    print(f"{len(images)} images ({sum(1 for i in images if i['text'])} with text), "
          f"{len(truth['albums'])} albums, {len(truth['queries'])} queries")
    print_tables(named)
    return 0
