"""Album vision summary v1, as pure functions.

The replaced system's semantics (README) with its bugs fixed: items are taken in album *position* order
(not the order results arrived), OCR text is actually carried, de-duplication normalises
case, whitespace and punctuation, and skipped items count as done so albums with videos or
broken files still assemble.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from include.album.domain.lifecycle import ItemStatus

SUMMARY_SCHEMA = "v1"
POSITION_WEIGHTS = (3.0, 2.5, 2.0)  # the cover and the first items say most about an album
OTHER_WEIGHT = 1.0
MAX_DESCRIPTIONS = 5
MAX_LABELS = 20
MAX_OCR_ITEMS = 3
NEAR_DUPLICATE_DISTANCE = 8
SEPARATOR = " | "


@dataclass(frozen=True)
class ItemVision:
    """One album item's vision outcome: a result, a terminal skip, or still pending."""

    position: int
    message_id: int
    result: dict | None = None
    skip_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.skip_reason is not None

    @property
    def status(self) -> ItemStatus:
        if self.result is not None:
            return ItemStatus.ANALYZED
        return ItemStatus.SKIPPED if self.skip_reason is not None else ItemStatus.PENDING


def model_summary(enrichment: dict) -> str | None:
    """The album's summary when a model wrote it; None for the local provider's templated
    descriptions (kind, size, colours), which tell a reader or a search nothing."""
    if str(enrichment.get("provider_key", "")).startswith("local:"):
        return None
    return enrichment.get("vision_summary")


def normalise(text: str) -> str:
    """Case, whitespace and punctuation folded: 'Sunset, over the bay!' == 'sunset over  the bay'."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZ" else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def weight_of(position: int) -> float:
    return POSITION_WEIGHTS[position] if position < len(POSITION_WEIGHTS) else OTHER_WEIGHT


def descriptions(items: Sequence[ItemVision]) -> list[dict]:
    """Weighted descriptions in position order, de-duplicated after normalisation, at most 5."""
    candidates = []
    for item in sorted(items, key=lambda i: i.position):
        text = ((item.result or {}).get("description") or "").strip()
        if text:
            candidates.append({"position": item.position, "weight": weight_of(item.position), "text": text})
    candidates.sort(key=lambda c: -c["weight"])  # stable: equal weights keep position order
    seen, kept = set(), []
    for candidate in candidates:
        key = normalise(candidate["text"])
        if key and key not in seen:
            seen.add(key)
            kept.append(candidate)
    return kept[:MAX_DESCRIPTIONS]


def label_counts(items: Sequence[ItemVision]) -> list[tuple[str, int]]:
    """Labels lower-cased and trimmed, counted once per item across items, most frequent first."""
    counts: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    for item in sorted(items, key=lambda i: i.position):
        labels = {str(label).strip().lower() for label in (item.result or {}).get("labels") or []} - {""}
        for label in sorted(labels):
            counts[label] += 1
            first_seen.setdefault(label, len(first_seen))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], first_seen[kv[0]]))
    return ranked[:MAX_LABELS]


def ocr_texts(items: Sequence[ItemVision]) -> list[str]:
    texts = []
    for item in sorted(items, key=lambda i: i.position):
        text = (((item.result or {}).get("ocr") or {}).get("text") or "").strip()
        if text:
            texts.append(text)
    return texts[:MAX_OCR_ITEMS]


def phash_distance(a: str, b: str) -> int:
    """Bits that differ between two perceptual hashes (hex strings, as vision stores them)."""
    return bin(int(a, 16) ^ int(b, 16)).count("1")


def near_duplicates(items: Sequence[ItemVision]) -> list[dict]:
    hashed = [(i.position, i.result["phash"]) for i in sorted(items, key=lambda i: i.position)
              if i.result and i.result.get("phash")]
    pairs = []
    for n, (pos_a, hash_a) in enumerate(hashed):
        for pos_b, hash_b in hashed[n + 1:]:
            distance = phash_distance(hash_a, hash_b)
            if distance <= NEAR_DUPLICATE_DISTANCE:
                pairs.append({"positions": [pos_a, pos_b], "distance": distance})
    return pairs


def aggregate(items: Sequence[ItemVision], *, posted_at: datetime, assembled_at: datetime,
              partial: bool) -> dict:
    """The album vision summary v1 from its items' outcomes."""
    kept = descriptions(items)
    labels = label_counts(items)
    ocr = ocr_texts(items)
    analysed = [i for i in items if i.result is not None]
    return {
        "schema_version": SUMMARY_SCHEMA,
        "vision_summary": SEPARATOR.join(d["text"] for d in kept) or None,
        "descriptions": kept,
        "vision_labels": [label for label, _ in labels],
        "label_counts": dict(labels),
        "ocr_text": SEPARATOR.join(ocr) or None,
        "has_meme": any(bool(i.result.get("is_meme")) for i in analysed),
        "has_text": bool(ocr),
        "near_duplicates": near_duplicates(items),
        "items_count": len(items),
        "items_analyzed": len(analysed),
        "items_skipped": sum(1 for i in items if i.result is None and i.skip_reason is not None),
        "partial": partial,
        "assembled_at": assembled_at.isoformat(),
        "assembly_lag_seconds": round((assembled_at - posted_at).total_seconds(), 3),
    }
