"""The words of a text as a sparse vector: the lexical half of hybrid search.

A dense embedding finds what a text is about; it does not promise that a text holding the very
words of a query ranks first, nor that a word it has never seen (a name, a number, a rare
Russian form) lands anywhere near. The lexical vector does: every term of a text is a
dimension, weighted by how often it occurs (BM25's saturation); Qdrant multiplies in the
term's rarity across the collection (its IDF modifier), so a query's rare words count most.

Terms: words lower-cased (``ё`` as ``е``) and stemmed with Snowball, Russian for Cyrillic
words and English for Latin ones, so ``набережная`` meets ``набережной`` and ``noodles``
meets ``noodle``; function words out; numbers as written (``380``, ``3.5``); ``#hashtags``
and ``@usernames`` as themselves and as their words; a link as its host (``github.com``) and
the host's name (``github``).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter
from functools import cache

from include.album.providers.stopwords import STOP_WORDS

# The name of this tokenisation, kept with a collection: terms of another version would not meet
# the collection's, so a change of any rule here is a new key (and a reindex).
KEY = "snowball-ru-en-1"

# BM25's term-frequency saturation (k1) and length normalisation (b) against a typical post's
# length in terms; Qdrant's IDF modifier supplies the rest of BM25 at query time.
_K1, _B, _TYPICAL_TERMS = 1.2, 0.75, 24.0

_LINK = r"(?:https?://|www\.)(?P<host>[\w.-]+)[^\s]*"
_TERM = re.compile(rf"{_LINK}|(?P<tag>[#@]\w+)|(?P<number>\d+(?:[.,]\d+)*)|(?P<word>[^\W\d_]+)", re.UNICODE)
_CYRILLIC = re.compile(r"[а-я]")


@cache
def _stemmer(language: str):
    import Stemmer  # PyStemmer: Snowball in C

    return Stemmer.Stemmer(language)


@cache
def _stem(word: str) -> str:
    return _stemmer("russian" if _CYRILLIC.search(word) else "english").stemWord(word)


def _words(text: str) -> list[str]:
    return [_stem(word) for word in re.findall(r"[^\W\d_]+", text) if len(word) > 1 and word not in STOP_WORDS]


def terms(text: str | None) -> list[str]:
    """The terms of ``text`` in order, repeated as often as they occur."""
    normal = unicodedata.normalize("NFKC", text or "").lower().replace("ё", "е")
    out: list[str] = []
    for match in _TERM.finditer(normal):
        if host := match["host"]:
            host = host.strip(".-").removeprefix("www.")
            out.append(host)
            out.extend(_words(host.rsplit(".", 1)[0]))
        elif tag := match["tag"]:
            out.append(tag)
            out.extend(_words(tag[1:]))
        elif number := match["number"]:
            out.append(number.replace(",", "."))
        else:
            out.extend(_words(match["word"]))
    return out


def term_id(term: str) -> int:
    """A term's dimension: a stable 32-bit hash (Qdrant's sparse indices are unsigned 32-bit)."""
    return zlib.crc32(term.encode())


def document_vector(text: str | None) -> tuple[list[int], list[float]]:
    """(indices, values) of a document: BM25-saturated term frequencies."""
    counts = Counter(term_id(term) for term in terms(text))
    length = sum(counts.values())
    norm = _K1 * (1 - _B + _B * length / _TYPICAL_TERMS)
    indices = sorted(counts)
    return indices, [round(counts[i] * (_K1 + 1) / (counts[i] + norm), 4) for i in indices]


def query_vector(text: str | None) -> tuple[list[int], list[float]]:
    """(indices, values) of a query: each distinct term once (Qdrant weighs it by its IDF)."""
    indices = sorted({term_id(term) for term in terms(text)})
    return indices, [1.0] * len(indices)
