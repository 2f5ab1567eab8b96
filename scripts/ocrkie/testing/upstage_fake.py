"""A local fake of the Upstage Document AI API, for tests and offline workflow runs.

It answers OCR, Document Parse and Information Extraction requests on 127.0.0.1 with content
derived from registered ground truth, and injects the faults a real service shows (429, 5xx,
slow answers, dropped connections, malformed JSON) deterministically from a seed.

In pytest::

    with FakeUpstage() as server:
        server.register(image_bytes, lines=[...], fields={...})
        client = UpstageClient(server.api_key, base_url=server.url)

As a script (prints its base URL on the first line of stdout, serves until killed)::

    python -m ocrkie.testing.upstage_fake --port 0 --ground-truth DIR --fault-rate 0.2

Images are found by sha256; when that fails and Pillow is present, by a 32x32 thumbnail, so an
image that was re-encoded or resized before upload still gets its ground truth (its coordinates
scaled to the received size). A document of several pages (a PDF, rendered at ``pdf_dpi`` as
the service renders it, or the frames of a TIFF) is read page by page, each page matched on
its own: OCR answers one ``pages`` entry per page (the first ``max_ocr_pages``; later pages are
ignored, as the service's documentation says) and bills each page, Document Parse marks each
element with its page and refuses more than ``max_parse_pages`` (413), Information Extraction
reads every page. Only the synchronous endpoints are served.
"""

from __future__ import annotations

import argparse
import ast
import base64
import bisect
import contextlib
import hashlib
import html
import io
import json
import logging
import random
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("fake_upstage")

DEFAULT_KEY = "up_test_key_0123456789"
MODEL_VERSIONS = {
    "ocr": "ocr-260930",
    "document-parse": "document-parse-260930",
    "information-extract": "information-extract-260904",
}
ENDPOINTS = ("ocr", "document-parse", "information-extract", "models")
FAULT_KINDS = (
    "429",
    "429-retry-after",
    "500",
    "502",
    "503",
    "504",
    "drop",
    "reset",
    "truncate",
    "malformed",
    "slow",
    "trickle",
)
# "slow" and "trickle" depend on client timeouts
DEFAULT_FAULTS = tuple(k for k in FAULT_KINDS if k not in ("slow", "trickle"))
PROCESSED_FAULTS = ("truncate", "malformed", "trickle")  # answered (and billed), then broken
FORMATS = ("text", "html", "markdown")
MB = 1024 * 1024
MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"BM", b"%PDF-")
THUMB = 32  # side of the z-scored grey thumbnails compared for fuzzy matching
# A receipt re-encoded as grey JPEG at 2/3 size is < 0.09 from its original; distinct receipts
# of one store template can be as close, so the best match must also clearly beat the next.
THUMB_MAX_DISTANCE = 0.25
THUMB_MIN_RATIO = 1.3
CONFIG_KEYS = (
    "fault_rate",
    "faults",
    "retry_after",
    "latency",
    "slow_seconds",
    "rate_limits",
    "rate_limit_retry_after",
    "max_document_bytes",
    "seed",
    "trickle_seconds",
)


class HttpError(Exception):
    """An error answer: status, message, optional headers."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


@dataclass
class GroundTruth:
    lines: list[dict[str, Any]]  # {"text": str, "polygon": [[x, y] * 4]} clockwise from top-left
    fields: dict[str, str]
    width: int
    height: int
    thumb: tuple[float, ...] | None = None


@dataclass
class Match:
    """What the fake knows about a received page."""

    image: str  # sha256 of the registered image it matched, else of the received bytes
    truth: GroundTruth | None
    width: int
    height: int
    scale: tuple[float, float] = (1.0, 1.0)
    how: str = "sha256"  # or "thumbnail", or "" when nothing matched


@dataclass
class Reading:
    """A received document: its pages, each matched on its own."""

    key: str  # what requests are counted by: the page's image for one page, else the file's
    pages: list[Match]


class FakeUpstage:
    """The fake service. Public attributes may be changed while it runs (or via /_fake/config).

    Counters: ``calls[(image_sha256, endpoint)]``, ``faults_injected[kind]``,
    ``rate_limited[endpoint]``, ``responses[(endpoint, status)]`` (status 0: connection dropped);
    ``arrivals[endpoint]`` (seconds since start/reset); ``received`` logs each request's form
    fields (never the key). Endpoints: ocr, document-parse, information-extract, models, and
    document-digitization for an unknown model.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_KEY,
        forbidden_keys: Iterable[str] = (),
        seed: int = 0,
        fault_rate: float = 0.0,
        faults: Sequence[str] = DEFAULT_FAULTS,
        retry_after: float = 1.0,
        latency: tuple[float, float] = (0.0, 0.0),
        slow_seconds: float = 5.0,
        rate_limits: Mapping[str, float] | None = None,
        rate_limit_retry_after: float | None = None,
        max_document_bytes: int = 50 * MB,
        echo_key_in_errors: bool = False,
        fuzzy_match: bool = True,
        pdf_dpi: int = 150,
        max_ocr_pages: int = 30,
        max_parse_pages: int = 100,
        trickle_seconds: float = 0.05,
    ) -> None:
        _check_kinds(faults)
        self.host, self.port = host, port
        self.api_key = api_key
        self.forbidden_keys = set(forbidden_keys)
        self.seed = seed
        self.fault_rate = fault_rate
        self.faults = tuple(faults)
        self.retry_after = retry_after
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.rate_limits = dict(rate_limits or {})
        self.rate_limit_retry_after = rate_limit_retry_after
        self.max_document_bytes = max_document_bytes
        self.echo_key_in_errors = echo_key_in_errors
        self.fuzzy_match = fuzzy_match and _pil() is not None
        self.pdf_dpi = pdf_dpi
        self.max_ocr_pages = max_ocr_pages
        self.max_parse_pages = max_parse_pages
        self.trickle_seconds = trickle_seconds
        self.truths: dict[str, GroundTruth] = {}
        self._lock = threading.Lock()
        self._gate = threading.Event()  # cleared by hold(): answers wait
        self._gate.set()
        self._drop_before = 0.0  # requests that arrived earlier are dropped (see release)
        self.down: set[str] = set()  # endpoints answering 503 (see outage)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL to give the client, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeUpstage:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-upstage-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> FakeUpstage:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- ground truth -------------------------------------------------------------------------

    def register(
        self,
        image: bytes,
        lines: Iterable[Mapping[str, Any]] = (),
        fields: Mapping[str, str] | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> str:
        """Register an image's ground truth; returns its sha256 (the key of ``calls``)."""
        lines = [
            {"text": str(ln["text"]), "polygon": [list(p) for p in ln["polygon"]]} for ln in lines
        ]
        size = _image_size(image)
        if width is None or height is None:
            extent = [(x, y) for ln in lines for x, y in ln["polygon"]]
            fallback = (
                max((x for x, _ in extent), default=0) + 1,
                max((y for _, y in extent), default=0) + 1,
            )
            width, height = size or fallback
        sha = hashlib.sha256(image).hexdigest()
        thumb = _thumbnail(image) if self.fuzzy_match else None
        self.truths[sha] = GroundTruth(lines, dict(fields or {}), int(width), int(height), thumb)
        return sha

    def register_dir(self, directory: str | Path) -> int:
        """Register every ``img/NNN.*`` with its ``box/NNN.csv`` and ``key/NNN.json``."""
        root = Path(directory)
        count = 0
        for image_path in sorted((root / "img").iterdir()):
            if not image_path.is_file() or image_path.name.startswith("."):
                continue
            box, key = (
                root / "box" / f"{image_path.stem}.csv",
                root / "key" / f"{image_path.stem}.json",
            )
            lines = read_box_csv(box) if box.exists() else []
            fields = json.loads(key.read_text(encoding="utf-8")) if key.exists() else {}
            self.register(image_path.read_bytes(), lines, fields)
            count += 1
        return count

    # -- test controls ------------------------------------------------------------------------

    def script(self, *kinds: str, endpoint: str | None = None, image: str | None = None) -> None:
        """Force the outcome of the next matching requests, in order: a fault kind or "ok".

        Scripted outcomes take precedence over ``fault_rate``; ``endpoint``/``image`` (sha256)
        restrict which requests consume them.
        """
        _check_kinds(k for k in kinds if k != "ok")
        with self._lock:
            self._script.extend((kind, endpoint, image) for kind in kinds)

    def outage(self, *endpoints: str) -> None:
        """Answer every request to these endpoints with 503 until ``recover`` (scripted
        outcomes still come first): a service that is down."""
        with self._lock:
            self.down.update(endpoints)

    def recover(self) -> None:
        with self._lock:
            self.down.clear()

    def hold(self) -> None:
        """Keep every answer not yet sent until ``release``: a deterministic moment to kill
        a client at, with nothing half-answered."""
        self._gate.clear()

    def release(self, drop: bool = False) -> None:
        """Let held answers go. With ``drop``, every request that arrived before now (the
        killed client's) closes its connection without an answer, even one still waiting."""
        if drop:
            self._drop_before = time.monotonic()
        self._gate.set()

    def pass_gate(self, arrived: float) -> bool:
        """Called before answering: False for a request that is to be dropped."""
        self._gate.wait()
        return arrived >= self._drop_before

    def configure(self, **settings: Any) -> None:
        """Change fault settings at run time (the keys of CONFIG_KEYS)."""
        unknown = set(settings) - set(CONFIG_KEYS)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        _check_kinds(settings.get("faults", ()))
        for name, value in settings.items():
            if name in ("faults", "latency"):
                value = tuple(value)
            setattr(self, name, value)

    def reset(self) -> None:
        """Forget counters, logs and scripted faults (ground truth and settings stay)."""
        with self._lock:
            self.calls: Counter[tuple[str, str]] = Counter()
            self.answers: Counter[tuple[str, str]] = Counter()  # pages answered (complete 200s)
            self.billed_pages: Counter[str] = Counter()  # pages processed, answers lost included
            self.faults_injected: Counter[str] = Counter()
            self.rate_limited: Counter[str] = Counter()
            self.responses: Counter[tuple[str, int]] = Counter()
            self.received: list[dict[str, Any]] = []
            self.arrivals: dict[str, list[float]] = defaultdict(list)
            self._script: list[tuple[str, str | None, str | None]] = []
            self._last_faulted: dict[tuple[str, str], bool] = {}
            self._windows: dict[str, list[float]] = defaultdict(list)
            self.started_at = time.monotonic()

    def calls_for(self, endpoint: str) -> int:
        with self._lock:
            return sum(n for (_, e), n in self.calls.items() if e == endpoint)

    def stats(self) -> dict[str, Any]:
        """JSON-ready counters (also served at GET /_fake/stats)."""
        with self._lock:
            calls: dict[str, dict[str, int]] = defaultdict(dict)
            for (image, endpoint), n in self.calls.items():
                calls[image][endpoint] = n
            responses: dict[str, dict[str, int]] = defaultdict(dict)
            for (endpoint, status), n in self.responses.items():
                responses[endpoint][str(status)] = n
            totals = Counter()
            for (_, endpoint), n in self.calls.items():
                totals[endpoint] += n
            answers: dict[str, dict[str, int]] = defaultdict(dict)
            for (image, endpoint), n in self.answers.items():
                answers[image][endpoint] = n
            return {
                "calls": calls,
                "answers": answers,
                "calls_total": dict(totals),
                "billed_pages": dict(self.billed_pages),
                "faults": dict(self.faults_injected),
                "rate_limited": dict(self.rate_limited),
                "responses": responses,
                "arrivals": {e: [round(t, 4) for t in ts] for e, ts in self.arrivals.items()},
                "registered": len(self.truths),
            }

    # -- request bookkeeping (called by the handler) ------------------------------------------

    def match(self, document: bytes) -> Match:
        """The first page of a document, matched."""
        return self.read(document).pages[0]

    def read(self, document: bytes) -> Reading:
        """Every page of a document, each matched to a registered image if it can be."""
        sha = hashlib.sha256(document).hexdigest()
        truth = self.truths.get(sha)
        if truth is not None:
            return Reading(sha, [Match(sha, truth, truth.width, truth.height)])
        images = _page_images(document, self.pdf_dpi) or [None]
        pages = [
            self._match_page(image, sha if len(images) == 1 else f"{sha}#{n}")
            for n, image in enumerate(images, 1)
        ]
        return Reading(pages[0].image if len(pages) == 1 else sha, pages)

    def _match_page(self, image: Any, fallback: str) -> Match:
        if image is None:
            return Match(fallback, None, 1000, 1000, how="")
        size = image.size
        if self.fuzzy_match and self.truths:
            found = self._fuzzy(_thumb_of(image), size)
            if found is not None:
                sha, truth = found
                scale = (size[0] / truth.width, size[1] / truth.height)
                return Match(sha, truth, size[0], size[1], scale, "thumbnail")
        return Match(fallback, None, *size, how="")

    def _fuzzy(
        self, thumb: tuple[float, ...] | None, size: tuple[int, int]
    ) -> tuple[str, GroundTruth] | None:
        if thumb is None:
            return None
        ranked = sorted(
            (sum(abs(a - b) for a, b in zip(thumb, truth.thumb, strict=True)) / len(thumb), image)
            for image, truth in self.truths.items()
            if truth.thumb is not None
            and abs(size[0] / size[1] - truth.width / truth.height) <= 0.03
        )
        if not ranked or ranked[0][0] > THUMB_MAX_DISTANCE:
            return None
        if len(ranked) > 1 and ranked[1][0] < ranked[0][0] * THUMB_MIN_RATIO:
            return None  # ambiguous: several registered images look alike
        return ranked[0][1], self.truths[ranked[0][1]]

    def arrive(self, reading: Reading | None, endpoint: str, fields: Mapping[str, Any]) -> int:
        """Count a request; returns how many this image has made to this endpoint (1-based)."""
        image = reading.key if reading else ""
        with self._lock:
            self.calls[(image, endpoint)] += 1
            self.arrivals[endpoint].append(time.monotonic() - self.started_at)
            if len(self.received) < 10_000:
                record = {
                    "endpoint": endpoint,
                    "image": image,
                    "matched_by": reading and reading.pages[0].how,
                    "pages": [page.image for page in reading.pages] if reading else [],
                }
                self.received.append({**record, "fields": dict(fields)})
            return self.calls[(image, endpoint)]

    def check_auth(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, "Missing API key: send 'Authorization: Bearer <key>'")
        if token in self.forbidden_keys:
            raise HttpError(403, "This API key is not allowed to use this model")
        if token != self.api_key:
            shown = f": {token}" if self.echo_key_in_errors else ""
            raise HttpError(401, f"Invalid API key{shown}")

    def check_rate(self, endpoint: str, arrived: float | None = None) -> None:
        """Sliding one-second window (1/rate s below 1 rps); rejected requests do not count."""
        rate = self.rate_limits.get(endpoint) or 0.0
        if rate <= 0:
            return
        window = max(1.0, 1.0 / rate)
        allowed = max(1, round(rate * window))
        now = time.monotonic() if arrived is None else arrived
        with self._lock:
            arrivals = self._windows[endpoint]  # sorted: handler threads may finish out of order
            while arrivals and arrivals[0] <= now - window:
                arrivals.pop(0)
            if sum(1 for t in arrivals if t > now - window) < allowed:
                bisect.insort(arrivals, now)
                return
            self.rate_limited[endpoint] += 1
        headers = {}
        if self.rate_limit_retry_after is not None:
            headers["Retry-After"] = f"{self.rate_limit_retry_after:g}"
        raise HttpError(429, "Too many requests: rate limit exceeded", headers)

    def decide(self, image: str, endpoint: str, attempt: int) -> tuple[str | None, float]:
        """(fault kind or None, latency) for this attempt, reproducible from the seed."""
        rng = random.Random(f"{self.seed}:{image}:{endpoint}:{attempt}")
        low, high = self.latency
        latency = rng.uniform(low, high) if high > 0 else 0.0
        with self._lock:
            scripted = next(
                (
                    i
                    for i, (_, e, im) in enumerate(self._script)
                    if e in (None, endpoint) and im in (None, image)
                ),
                None,
            )
            if scripted is not None:
                kind: str | None = self._script.pop(scripted)[0]
                kind = None if kind == "ok" else kind
            elif endpoint in self.down:
                kind = "503"
            elif self._last_faulted.get((image, endpoint)) or not self.faults:
                kind = None  # never fault the same image twice in a row: retries converge
            else:
                kind = rng.choice(self.faults) if rng.random() < self.fault_rate else None
            self._last_faulted[(image, endpoint)] = kind is not None
            if kind is not None:
                self.faults_injected[kind] += 1
        return kind, latency

    def answered(self, endpoint: str, status: int, pages: Sequence[Match] = ()) -> None:
        """Count an answer; ``pages`` are given for a complete 200 answer about them."""
        with self._lock:
            self.responses[(endpoint, status)] += 1
            for page in pages:
                self.answers[(page.image, endpoint)] += 1

    def bill(self, endpoint: str, pages: int) -> None:
        """Count pages processed: answered, or answered and then lost on the way."""
        with self._lock:
            self.billed_pages[endpoint] += pages


# -- answers ----------------------------------------------------------------------------------


def _page_words(match: Match) -> tuple[list[dict[str, Any]], list[str]]:
    words, texts = [], []
    for line in match.truth.lines if match.truth else []:
        polygon = _scaled(line["polygon"], match.scale)
        text = line["text"]
        texts.append(text)
        for start, end, word in _words(text):
            confidence = random.Random(f"{match.image}:{len(words)}").uniform(0.95, 0.999)
            words.append(
                {
                    "boundingBox": {
                        "vertices": _word_box(polygon, start / len(text), end / len(text))
                    },
                    "confidence": confidence,
                    "id": len(words),
                    "text": word,
                }
            )
    return words, texts


def ocr_answer(pages: Sequence[Match]) -> dict[str, Any]:
    entries, confidences = [], []
    for index, match in enumerate(pages):
        words, texts = _page_words(match)
        confidence = sum(w["confidence"] for w in words) / len(words) if words else 0.0
        confidences.append(confidence)
        entries.append(
            {
                "confidence": confidence,
                "height": match.height,
                "id": index,
                "text": "\n".join(texts),
                "width": match.width,
                "words": words,
            }
        )
    return {
        "apiVersion": "1.1",
        "confidence": sum(confidences) / len(confidences) if confidences else 0.0,
        "metadata": {
            "pages": [
                {"height": m.height, "page": n, "width": m.width} for n, m in enumerate(pages, 1)
            ]
        },
        "mimeType": "multipart/form-data",
        "modelVersion": MODEL_VERSIONS["ocr"],
        "numBilledPages": len(pages),
        "pages": entries,
        "stored": True,
        "text": "\n".join(entry["text"] for entry in entries),
    }


def parse_answer(
    pages: Sequence[Match], formats: Sequence[str], coordinates: bool
) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    for number, match in enumerate(pages, 1):
        for line in match.truth.lines if match.truth else []:
            i, text = len(elements), line["text"]
            content = {
                "html": f"<p id='{i}' data-category='paragraph' style='font-size:14px'>"
                f"{html.escape(text)}</p>",
                "markdown": text,
                "text": text,
            }
            element: dict[str, Any] = {
                "category": "paragraph",
                "content": {f: content[f] if f in formats else "" for f in FORMATS},
                "id": i,
                "page": number,
            }
            if coordinates:
                polygon = _scaled(line["polygon"], match.scale)
                element["coordinates"] = [
                    {
                        "x": round(min(max(x / match.width, 0.0), 1.0), 4),
                        "y": round(min(max(y / match.height, 0.0), 1.0), 4),
                    }
                    for x, y in polygon
                ]
            elements.append(element)
    joiners = {"html": "\n", "markdown": "\n\n", "text": "\n"}
    content = {f: joiners[f].join(e["content"][f] for e in elements) for f in formats}
    return {
        "api": "2.0",
        "content": {f: content.get(f, "") for f in FORMATS},
        "elements": elements,
        "model": MODEL_VERSIONS["document-parse"],
        "usage": {"pages": len(pages)},
    }


def extract_answer(
    pages: Sequence[Match], schema: Mapping[str, Any], document: bytes
) -> dict[str, Any]:
    """Each field from the first page that has a value for it: the service reads them all."""
    fields: dict[str, Any] = {}
    for match in pages:
        for name, value in (match.truth.fields if match.truth else {}).items():
            if value not in (None, "") and name not in fields:
                fields[name] = value
    values = _fill(schema, fields)
    content = json.dumps(values, ensure_ascii=False)
    prompt_tokens = 300 + len(document) // 750
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_VERSIONS["information-extract"],
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def models_answer() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": "upstage"}
            for m in [*MODEL_VERSIONS, *MODEL_VERSIONS.values()]
        ],
    }


def _words(text: str) -> list[tuple[int, int, str]]:
    """(start, end, word) for each whitespace-separated word."""
    spans, pos = [], 0
    for word in text.split():
        start = text.index(word, pos)
        pos = start + len(word)
        spans.append((start, pos, word))
    return spans


def _word_box(polygon: list[list[float]], a: float, b: float) -> list[dict[str, int]]:
    """The part of a line quadrilateral between fractions a and b of its length."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = polygon

    def lerp(p: tuple[float, float], q: tuple[float, float], t: float) -> dict[str, int]:
        return {"x": round(p[0] + (q[0] - p[0]) * t), "y": round(p[1] + (q[1] - p[1]) * t)}

    top, bottom = ((x0, y0), (x1, y1)), ((x3, y3), (x2, y2))
    return [lerp(*top, a), lerp(*top, b), lerp(*bottom, b), lerp(*bottom, a)]


def _scaled(polygon: list[list[float]], scale: tuple[float, float]) -> list[list[float]]:
    return [[x * scale[0], y * scale[1]] for x, y in polygon]


def _fill(schema: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """Values for a schema's properties, from the registered fields (missing → empty)."""
    return {
        name: _value(prop, fields.get(name))
        for name, prop in (schema.get("properties") or {}).items()
    }


def _value(prop: Mapping[str, Any], value: Any) -> Any:
    kind = prop.get("type")
    if kind == "object":
        return _fill(prop, value if isinstance(value, Mapping) else {})
    if kind == "array":
        return value if isinstance(value, list) else []
    if kind in ("number", "integer"):
        try:
            number = float(str(value).replace(",", ""))
        except ValueError:
            return None
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return bool(value)
    return "" if value is None else str(value)


# -- request parsing --------------------------------------------------------------------------


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename or None, bytes) for a multipart/form-data body."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise HttpError(400, "no document in the request")
    parts: dict[str, tuple[str | None, bytes]] = {}
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, rest = chunk.partition(b"\r\n")  # transport padding up to the first CRLF
        if rest.startswith(b"\r\n"):  # a part without headers
            head, data = b"", rest[2:]
        else:
            head, _, data = rest.partition(b"\r\n\r\n")
        headers = HeaderParser().parsestr(head.decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = (headers.get_filename(), data)
    return parts


def parse_list(value: str | None, default: Sequence[str]) -> list[str]:
    """A list field sent as JSON (``["html"]``) or as a Python literal (``['html']``)."""
    if value is None:
        return list(default)
    for parse in (json.loads, ast.literal_eval):
        try:
            parsed = parse(value)
        except (ValueError, SyntaxError):
            continue
        if isinstance(parsed, list | tuple) and all(isinstance(v, str) for v in parsed):
            return list(parsed)
    raise HttpError(400, f"invalid list value {value!r}")


def parse_bool(value: str | None, default: bool, name: str) -> bool:
    if value is None:
        return default
    if value in ("true", "True"):
        return True
    if value in ("false", "False"):
        return False
    raise HttpError(400, f"invalid value for {name}: {value!r}")


def read_box_csv(path: Path) -> list[dict[str, Any]]:
    """SROIE-style ``x1,y1,...,x4,y4,TEXT`` lines (TEXT may contain commas)."""
    lines = []
    for row in path.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        cells = row.split(",", 8)
        if len(cells) < 9:
            continue
        try:
            coords = [float(c) for c in cells[:8]]
        except ValueError:
            continue
        polygon = [coords[i : i + 2] for i in range(0, 8, 2)]
        lines.append({"text": cells[8].strip(), "polygon": polygon})
    return lines


def is_supported(document: bytes) -> bool:
    return document.startswith(MAGIC) or (document[:4] == b"RIFF" and document[8:12] == b"WEBP")


def _check_kinds(kinds: Iterable[str]) -> None:
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(FAULT_KINDS)}")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:
        return None
    return Image


def _image_size(document: bytes) -> tuple[int, int] | None:
    image_module = _pil()
    if image_module is None:
        return None
    try:
        with image_module.open(io.BytesIO(document)) as image:
            return _upright(image).size
    except Exception:
        return None


def _page_images(document: bytes, pdf_dpi: int) -> list[Any] | None:
    """Each page as the service sees it: a PDF's pages rendered at ``pdf_dpi``, a TIFF's (or
    GIF's) frames, an image upright; None without Pillow, or for what is not an image."""
    image_module = _pil()
    if image_module is None:
        return None
    if document.startswith(b"%PDF-"):
        try:
            import pypdfium2

            pdf = pypdfium2.PdfDocument(document)
            return [page.render(scale=pdf_dpi / 72).to_pil() for page in pdf]
        except Exception:
            return None
    try:
        with image_module.open(io.BytesIO(document)) as image:
            frames = []
            for n in range(getattr(image, "n_frames", 1)):
                image.seek(n)
                frames.append(_upright(image.copy()))
            return frames
    except Exception:
        return None


def _thumb_of(image: Any) -> tuple[float, ...]:
    """A THUMB x THUMB grey thumbnail of a decoded page, z-scored."""
    small = image.convert("L").resize((THUMB, THUMB), _pil().Resampling.BOX)
    pixels = small.tobytes()
    mean = sum(pixels) / len(pixels)
    std = (sum((p - mean) ** 2 for p in pixels) / len(pixels)) ** 0.5 or 1.0
    return tuple((p - mean) / std for p in pixels)


def _upright(image: Any) -> Any:
    """The page as displayed: the service, like the ground truth, sees EXIF orientation."""
    from PIL import ImageOps

    return ImageOps.exif_transpose(image)


def _thumbnail(document: bytes) -> tuple[float, ...] | None:
    """A THUMB x THUMB grey thumbnail, z-scored so that contrast changes do not matter."""
    image_module = _pil()
    if image_module is None:
        return None
    try:
        with image_module.open(io.BytesIO(document)) as image:
            image.draft("L", (THUMB * 8, THUMB * 8))  # fast JPEG decode at reduced size
            return _thumb_of(_upright(image))
    except Exception:
        return None


# -- HTTP -------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeUpstage

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads idling on keep-alive connections so they end."""
        with self._open_lock:
            for sock in list(self._open):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up are routine here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: avoid 40 ms stalls
    server_version = "FakeUpstage/1.0"
    timeout = 60  # an idle keep-alive connection is closed after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    @property
    def fake(self) -> FakeUpstage:
        return self.server.fake

    # -- routing --

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path == "/_fake/stats":
            self._send_json(200, self.fake.stats())
        elif path == "/v1/models":
            self._serve("models", "openai", lambda reading: (models_answer(), []))
        else:
            self._send_error(HttpError(404, "not found"), "flat")

    def do_POST(self) -> None:
        self.arrived = time.monotonic()  # as an API gateway sees it, before any decoding
        path = urlsplit(self.path).path.rstrip("/")
        try:
            body = self._read_body()
        except HttpError as exc:
            self._send_error(exc, "flat")
            return
        if path == "/_fake/reset":
            self.fake.reset()
            self._send_json(200, {"ok": True})
        elif path == "/_fake/script":
            self._control(
                lambda req: self.fake.script(
                    *req["faults"], endpoint=req.get("endpoint"), image=req.get("image")
                ),
                body,
            )
        elif path == "/_fake/config":
            self._control(lambda req: self.fake.configure(**req), body)
        elif path == "/v1/document-digitization":
            self._digitization(body)
        elif path == "/v1/information-extraction":
            self._extraction(body)
        else:
            self._send_error(HttpError(404, "not found"), "flat")

    def _control(self, action: Any, body: bytes) -> None:
        try:
            action(json.loads(body or b"{}"))
        except (ValueError, KeyError, TypeError) as exc:
            self._send_json(400, {"ok": False, "error": str(exc)})
        else:
            self._send_json(200, {"ok": True})

    # -- endpoints --

    def _digitization(self, body: bytes) -> None:
        try:
            parts = parse_multipart(body, self.headers.get("Content-Type", ""))
        except HttpError:
            parts = {}
        fields = {n: d.decode("utf-8", "replace") for n, (f, d) in parts.items() if n != "document"}
        model = fields.get("model", "")
        endpoint = next(
            (e for e in ("ocr", "document-parse") if model.startswith(e)), "document-digitization"
        )
        document = parts["document"][1] if "document" in parts else None

        def answer(reading: Reading | None) -> tuple[dict[str, Any], list[Match]]:
            if endpoint == "document-digitization":
                raise HttpError(400, "invalid model name")
            pages = self._check_document(document, reading).pages
            if endpoint == "ocr":
                pages = pages[: self.fake.max_ocr_pages]  # later pages are not read
                return ocr_answer(pages), pages
            self._check_pages(pages, self.fake.max_parse_pages)
            formats = parse_list(fields.get("output_formats"), ["html"])
            if not set(formats) <= set(FORMATS):
                raise HttpError(400, f"invalid output_formats: {formats}")
            coordinates = parse_bool(fields.get("coordinates"), True, "coordinates")
            return parse_answer(pages, formats, coordinates), pages

        self._serve(endpoint, "flat", answer, document, fields)

    def _extraction(self, body: bytes) -> None:
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError
        except ValueError:
            request = None
        document = _data_url_document(request)
        fields = {k: v for k, v in (request or {}).items() if k != "messages"}

        def answer(reading: Reading | None) -> tuple[dict[str, Any], list[Match]]:
            if request is None:
                raise HttpError(400, "request body is not a JSON object")
            if not str(request.get("model", "")).startswith("information-extract"):
                raise HttpError(400, "invalid model name")
            pages = self._check_document(document, reading).pages
            self._check_pages(pages, self.fake.max_parse_pages)
            schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise HttpError(400, "response_format.json_schema.schema must be an object schema")
            return extract_answer(pages, schema, document or b""), pages

        self._serve("information-extract", "openai", answer, document, fields)

    def _check_document(self, document: bytes | None, reading: Reading | None) -> Reading:
        if not document or reading is None:
            raise HttpError(400, "no document in the request")
        if len(document) > self.fake.max_document_bytes:
            limit = self.fake.max_document_bytes / MB
            raise HttpError(413, f"uploaded document is too large. max allowed size is {limit:g}MB")
        if not is_supported(document):
            raise HttpError(415, "unsupported document format")
        return reading

    @staticmethod
    def _check_pages(pages: Sequence[Match], limit: int) -> None:
        if len(pages) > limit:
            raise HttpError(413, f"the document has {len(pages)} pages; at most {limit} are read")

    # -- the common path: count, authenticate, rate-limit, inject faults, answer --

    def _serve(
        self,
        endpoint: str,
        envelope: str,
        answer: Any,
        document: bytes | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        fake = self.fake
        arrived = getattr(self, "arrived", time.monotonic())
        reading = fake.read(document) if document else None
        image = reading.key if reading else ""
        attempt = fake.arrive(reading, endpoint, fields or {})
        try:
            fake.check_auth(self.headers.get("Authorization"))
            fake.check_rate(endpoint, arrived)
        except HttpError as exc:
            self._reply_error(endpoint, exc, envelope)
            return
        fault, latency = fake.decide(image, endpoint, attempt)
        time.sleep(latency + (fake.slow_seconds if fault == "slow" else 0.0))
        if not fake.pass_gate(arrived):
            fake.answered(endpoint, 0)
            self._broken("drop")
            return
        if fault in ("drop", "reset"):
            fake.answered(endpoint, 0)
            self._broken(fault)
            return
        if fault is not None and fault not in ("slow", *PROCESSED_FAULTS):
            self._reply_error(endpoint, _fault_error(fault, fake.retry_after), envelope)
            return
        try:
            result, pages = answer(reading)
        except HttpError as exc:
            self._reply_error(endpoint, exc, envelope)
            return
        if pages:
            fake.bill(endpoint, len(pages))
        if fault in PROCESSED_FAULTS:  # processed and billed; the answer never arrives whole
            fake.answered(endpoint, 200)
            self._broken(fault, json.dumps(result).encode())
            return
        # counted before it is sent, as errors are: a client that reads the stats as soon as
        # it has its answer finds the answer counted
        fake.answered(endpoint, 200, pages)
        self._send_json(200, result)

    def _reply_error(self, endpoint: str, exc: HttpError, envelope: str) -> None:
        self.fake.answered(endpoint, exc.status)
        self._send_error(exc, envelope)

    def _broken(self, fault: str, answer: bytes = b"") -> None:
        self.close_connection = True
        if fault == "reset":  # RST instead of FIN when the socket is closed
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif fault == "truncate":  # promise the whole answer, send its first half
            body = answer[: len(answer) // 2]
            self._send_raw(200, body, "application/json", {"Content-Length": str(len(answer))})
        elif fault == "malformed":
            body = answer[: len(answer) // 2] or b'{"apiVersion": "1.1", "pages": [{"text": "'
            self._send_raw(200, body, "application/json")
            self.close_connection = False
        elif fault == "trickle":  # the whole answer, a byte at a time: a stalled proxy
            self._trickle(answer)

    def _trickle(self, body: bytes) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for offset in range(len(body)):
                self.wfile.write(body[offset : offset + 1])
                self.wfile.flush()
                time.sleep(self.fake.trickle_seconds)
        except OSError:  # the client gave up, as it should
            pass

    # -- wire --

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise HttpError(411, "chunked request bodies are not supported by the fake")
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send_raw(status, json.dumps(obj).encode(), "application/json", headers)

    def _send_error(self, exc: HttpError, envelope: str) -> None:
        if exc.status in (502, 504) and exc.message.startswith("<html>"):
            self._send_raw(exc.status, exc.message.encode(), "text/html", exc.headers)
        elif envelope == "openai":
            kind = "rate_limit_error" if exc.status == 429 else "invalid_request_error"
            body = {
                "error": {
                    "message": exc.message,
                    "type": kind,
                    "param": None,
                    "code": str(exc.status),
                }
            }
            self._send_json(exc.status, body, exc.headers)
        else:
            self._send_json(exc.status, {"code": exc.status, "message": exc.message}, exc.headers)

    def _send_raw(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        headers = dict(headers or {})
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", headers.pop("Content-Length", str(len(body))))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up (e.g. its read timeout)
            self.close_connection = True


def _fault_error(fault: str, retry_after: float) -> HttpError:
    if fault == "429":
        return HttpError(429, "Too many requests")
    if fault == "429-retry-after":
        return HttpError(429, "Too many requests", {"Retry-After": f"{retry_after:g}"})
    status = int(fault)
    if status in (502, 504):  # what a proxy in front of the service sends
        title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
        return HttpError(
            status,
            f"<html><head><title>{title}</title></head><body>"
            f"<center><h1>{title}</h1></center></body></html>",
        )
    return HttpError(status, "Internal server error" if status == 500 else "Service unavailable")


def _data_url_document(request: Mapping[str, Any] | None) -> bytes | None:
    """The first base64 data URL among the messages' image_url parts."""
    for message in (request or {}).get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            url = (
                ((part or {}).get("image_url") or {}).get("url", "")
                if isinstance(part, dict)
                else ""
            )
            head, _, data = url.partition(",")
            if head.startswith("data:") and head.endswith(";base64"):
                try:
                    return base64.b64decode(data, validate=True)
                except ValueError:
                    return None
    return None


# -- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument(
        "--forbidden-key", action="append", default=[], help="a key answered with 403 (repeatable)"
    )
    parser.add_argument(
        "--ground-truth",
        action="append",
        default=[],
        metavar="DIR",
        help="directory with img/, box/, key/ (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fault-rate", type=float, default=0.0, help="probability that an attempt gets a fault"
    )
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"comma-separated kinds among {','.join(FAULT_KINDS)}",
    )
    parser.add_argument(
        "--retry-after", type=float, default=1.0, help="seconds sent with the 429-retry-after fault"
    )
    parser.add_argument(
        "--latency",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("LO", "HI"),
        help="uniform answer latency in seconds",
    )
    parser.add_argument("--slow-seconds", type=float, default=5.0, help="delay of the slow fault")
    parser.add_argument(
        "--rate-limit",
        action="append",
        default=[],
        metavar="ENDPOINT=RPS",
        help=f"server-side limit, endpoint among {','.join(ENDPOINTS)}",
    )
    parser.add_argument("--rate-limit-retry-after", type=float, default=None)
    parser.add_argument("--max-bytes", type=int, default=50 * MB)
    parser.add_argument("--no-fuzzy", action="store_true", help="match images by sha256 only")
    parser.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(message)s",
    )
    rate_limits = {}
    for item in args.rate_limit:
        endpoint, _, rps = item.partition("=")
        rate_limits[endpoint] = float(rps)
    fake = FakeUpstage(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        forbidden_keys=args.forbidden_key,
        seed=args.seed,
        fault_rate=args.fault_rate,
        faults=[f for f in args.faults.split(",") if f],
        retry_after=args.retry_after,
        latency=tuple(args.latency),
        slow_seconds=args.slow_seconds,
        rate_limits=rate_limits,
        rate_limit_retry_after=args.rate_limit_retry_after,
        max_document_bytes=args.max_bytes,
        fuzzy_match=not args.no_fuzzy,
    )
    registered = sum(fake.register_dir(d) for d in args.ground_truth)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    fake.start()
    print(fake.url, flush=True)
    print(f"fake Upstage at {fake.url}: {registered} images registered", file=sys.stderr)
    while not stop.wait(0.5):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
