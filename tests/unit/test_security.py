"""Security rules checked on the code itself: parameterised SQL and Cypher, tenant ids, masked
secrets, bounded image decoding."""

from __future__ import annotations

import ast
import re

import pytest

from devtools.services import REPO

PRODUCTION = [*(REPO / "include").rglob("*.py"), *(REPO / "dags").glob("*.py"), *(REPO / "plugins").glob("*.py")]
EXECUTORS = {"execute", "executemany", "fetch_one", "fetch_all", "execute_many", "run", "query"}


def _assembled(node: ast.AST) -> bool:
    """A string built from pieces at run time: f-string, % or + on a literal, literal.format()."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.Add)):
        return isinstance(node.left, (ast.Constant, ast.JoinedStr)) or _assembled(node.left)
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant))


def statements_built_from_data() -> list[str]:
    found = []
    for path in PRODUCTION:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in EXECUTORS
                    and node.args and _assembled(node.args[0])):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return found


def test_no_sql_or_cypher_statement_is_assembled_from_strings():
    assert statements_built_from_data() == []


def test_the_checker_catches_an_f_string_statement(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(conn, name):\n    conn.execute(f"SELECT * FROM posts WHERE text = \'{name}\'")\n')
    monkeypatch.setattr(f"{__name__}.PRODUCTION", [bad])
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert statements_built_from_data() == ["bad.py:2"]


def test_statement_files_take_named_parameters_only():
    files = [*(REPO / "include" / "sql" / "queries").glob("*.sql"), *(REPO / "include" / "cypher").glob("*.cypher")]
    assert len(files) > 40
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "%s" not in text, f"{path.name}: use named %(name)s / $name parameters"
        assert not re.search(r"(?<!')\{\w+\}(?!')", text), f"{path.name}: a format-style placeholder"


@pytest.mark.parametrize("tenant_id", ["../x", "acme/../globex", "", "UPPER", "a b", "acme' OR '1'='1", "x" * 64,
                                       "-lead", "tenant\x00"])
def test_invalid_tenant_ids_are_rejected_in_keys_and_search_filters(tenant_id):
    from include.album.stores.media import summary_key
    from include.album.stores.qdrant import QdrantIndex

    with pytest.raises(ValueError, match="invalid tenant id"):
        summary_key(tenant_id, 1)
    with pytest.raises(ValueError, match="invalid tenant id"):
        QdrantIndex(client=None, collection="albums", embedder=None).search(tenant_id, "query")


def test_valid_tenant_ids_make_plain_keys():
    from include.album.stores.media import summary_key

    assert summary_key("acme", 42) == "album/acme/42_vision_summary_v1.json"
    assert summary_key("team_2-eu", 7) == "album/team_2-eu/7_vision_summary_v1.json"


def test_the_telegram_session_string_is_masked_in_task_logs():
    from airflow.sdk._shared.secrets_masker import redact

    from include.album.orchestration.connections import mask_secrets

    session, api_hash = "1BVtsOKABu-example-session-string-0123456789", "0123456789abcdef0123456789abcdef"
    mask_secrets(session, api_hash, None)
    line = f"connecting with {session} and {api_hash}"
    assert session not in redact(line) and api_hash not in redact(line)


def test_ocr_is_bounded_in_time(monkeypatch):
    from PIL import Image, ImageDraw

    from include.album.providers.vision import tesseract as vision

    assert vision.tesseract_available(), "install tesseract-ocr (.ci/run does): without it OCR never runs"
    image = Image.new("L", (1600, 900), 255)
    ImageDraw.Draw(image).text((20, 20), "SLOW " * 200, fill=0)
    monkeypatch.setattr(vision, "OCR_TIMEOUT_SECONDS", 0.01)
    assert not vision.ocr(image).words  # gave up, with a warning; the item gets no OCR text


def test_image_limits_cover_bytes_and_pixels():
    from include.album.providers.vision import MAX_IMAGE_BYTES, UnusableImage, decode_image

    with pytest.raises(UnusableImage) as raised:
        decode_image(b"\xff" * (MAX_IMAGE_BYTES + 1))
    assert raised.value.reason == "image_too_large"  # pixels: test_vision's decompression bomb test
