"""The OpenAI-compatible provider: any ``/chat/completions`` endpoint with vision (OpenAI, vLLM, Ollama).

Its JSON answer is validated against the item schema; the local hash and OCR are always
kept; on any error, timeout or invalid answer it falls back to the local result and says why.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from typing import Any

from PIL import Image

from include.album.providers.vision.local import LocalVision
from include.album.providers.vision.schema import KINDS, SCHEMA_VERSION, analyzed_at

log = logging.getLogger(__name__)


def first_json_object(content: str) -> Any:
    """The first complete JSON object in a model's answer: bare, in a code fence, or after prose.

    Raises ``json.JSONDecodeError`` when there is none (a cut-off answer, plain prose)."""
    start = content.find("{")
    if start < 0:
        raise json.JSONDecodeError("no JSON object in the answer", content, 0)
    answer, _ = json.JSONDecoder().raw_decode(content, start)
    return answer


def _retry_after(response: Any) -> float | None:
    """Seconds a 429/503 asks to wait (``Retry-After`` in seconds), else None."""
    if response.status_code not in (429, 503):
        return None
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def validate_item(answer: Any) -> dict:
    """Check a model's JSON answer against the item schema; return the fields we take from it."""
    if not isinstance(answer, dict):
        raise ValueError("answer is not a JSON object")
    kind = answer.get("kind")
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {KINDS}")
    description = answer.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("description must be a non-empty string")
    labels = answer.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ValueError("labels must be a list of strings")
    is_meme = answer.get("is_meme", kind == "meme")
    if not isinstance(is_meme, bool):
        raise ValueError("is_meme must be a boolean")
    return {"kind": kind, "description": description.strip()[:500],
            "labels": [label.strip().lower() for label in labels if label.strip()][:20], "is_meme": is_meme}


_PROMPT = (
    "Describe this image for a search index. Answer with one JSON object only: "
    '{"kind": one of ' + json.dumps(list(KINDS)) + ', "description": "one sentence, at most 160 characters", '
    '"labels": ["up to 20 short lower-case labels"], "is_meme": true or false}.'
)


class OpenAIVision:
    """An OpenAI-compatible vision endpoint, falling back to ``LocalVision`` on any failure.

    Real VLM servers (vLLM, Ollama, hosted APIs) answer in ways the schema must survive: JSON in
    a code fence or after a sentence of prose is taken (the first complete object), a cut-off
    or invalid answer falls back to the local result with the reason. A 429 or 503 with
    ``Retry-After`` up to ``RETRY_AFTER_CAP_SECONDS`` is waited for and asked again, at most
    ``RATE_LIMIT_RETRIES`` times; a longer wait, or more, falls back rather than stall the task.
    """

    name = "openai"
    RATE_LIMIT_RETRIES = 2
    RETRY_AFTER_CAP_SECONDS = 30.0

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout: float = 30.0,
                 local: LocalVision | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.local = local or LocalVision()

    @property
    def key(self) -> str:
        return f"{self.name}:{self.model}:{SCHEMA_VERSION}"

    def _ask(self, data: bytes) -> dict:
        import httpx

        image = Image.open(io.BytesIO(data))
        mime = Image.MIME.get(image.format or "", "image/jpeg")
        body = {
            "model": self.model,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": _PROMPT},
                {"type": "image_url",
                 "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}},
            ]}],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        for attempt in range(self.RATE_LIMIT_RETRIES + 1):
            response = httpx.post(f"{self.base_url}/chat/completions", json=body, headers=headers,
                                  timeout=self.timeout)
            wait = _retry_after(response)
            if wait is None or attempt == self.RATE_LIMIT_RETRIES or wait > self.RETRY_AFTER_CAP_SECONDS:
                break
            log.info("vision endpoint %s answered %d; asking again in %.1f s", self.base_url, response.status_code,
                     wait)
            time.sleep(wait)
        response.raise_for_status()
        return validate_item(first_json_object(response.json()["choices"][0]["message"]["content"]))

    def analyse(self, data: bytes) -> dict:
        facts = self.local.facts(data)  # decoding limits and the hash/OCR we always keep
        local = self.local.result_from(facts)
        try:
            answer = self._ask(data)
        except Exception as exc:  # noqa: BLE001 - any failure of the remote model falls back to local
            reason = f"{type(exc).__name__}: {str(exc)[:200]}"
            log.warning("vision endpoint %s failed (%s); using the local result", self.base_url, reason)
            return {**local, "fallback_reason": reason}
        return {**local, **answer, "provider": self.name, "model": self.model, "analyzed_at": analyzed_at()}
