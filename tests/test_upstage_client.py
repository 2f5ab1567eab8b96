"""The Upstage client against the local fake service (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import email.utils
import io
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image, ImageDraw

from ocrkie.errors import AuthenticationError, FatalError, RejectedByService, TransientError
from ocrkie.testing.upstage_fake import FakeUpstage
from ocrkie.upstage import UpstageClient, extracted_fields, parse_retry_after

NO_LIMITS = {"ocr": 0, "document-parse": 0, "information-extract": 0}
LINES = [
    {"text": "ACME STORE SDN BHD", "polygon": [[20, 10], [200, 10], [200, 30], [20, 30]]},
    {"text": "25/12/2018 8:13 PM", "polygon": [[20, 40], [160, 42], [160, 60], [20, 58]]},
    {"text": "TOTAL: 1,234.50", "polygon": [[20, 70], [140, 70], [140, 90], [20, 90]]},
]
FIELDS = {"company": "ACME STORE SDN BHD", "date": "25/12/2018", "total": "1,234.50"}
SCHEMA = {
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "date": {"type": "string"},
        "total": {"type": "string"},
        "address": {"type": "string"},
    },
}


def receipt(seed: int = 0, size: tuple[int, int] = (240, 120)) -> bytes:
    """A small JPEG with a few dark bars where text would be; distinct per seed."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for i in range(3):
        draw.rectangle([20, 10 + 30 * i, 60 + 40 * ((seed + i) % 4), 30 + 30 * i], fill="black")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests honours *_PROXY variables: make sure nothing leaves 127.0.0.1."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def fake() -> Iterator[FakeUpstage]:
    with FakeUpstage(retry_after=0.05) as server:
        yield server


@pytest.fixture
def image(fake: FakeUpstage) -> bytes:
    data = receipt()
    fake.register(data, LINES, FIELDS, width=240, height=120)
    return data


@pytest.fixture
def make_client(fake: FakeUpstage, tmp_path: Path) -> Iterator[Callable[..., UpstageClient]]:
    clients: list[UpstageClient] = []

    def make(**overrides: Any) -> UpstageClient:
        settings: dict[str, Any] = {
            "api_key": fake.api_key,
            "base_url": fake.url,
            "timeout": (1.0, 2.0),
            "max_attempts": 4,
            "backoff_initial": 0.01,
            "backoff_max": 0.2,
            "rate_limits": NO_LIMITS,
            "rate_limit_dir": tmp_path / "slots",
            **overrides,
        }
        clients.append(UpstageClient(**settings))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def sha(fake: FakeUpstage, data: bytes) -> str:
    return fake.match(data).image


# -- successful answers ------------------------------------------------------------------------


def test_ocr_returns_the_registered_text_and_word_boxes(fake, image, make_client):
    client = make_client()
    answer = client.ocr(image, "receipt.jpg").body

    assert answer["text"] == "\n".join(line["text"] for line in LINES)
    page = answer["pages"][0]
    assert (page["width"], page["height"]) == (240, 120)
    assert [w["text"] for w in page["words"]] == " ".join(ln["text"] for ln in LINES).split()
    # "ACME" is the first 4 of 18 characters of a 180-px-wide line starting at x=20.
    assert page["words"][0]["boundingBox"]["vertices"] == [
        {"x": 20, "y": 10},
        {"x": 60, "y": 10},
        {"x": 60, "y": 30},
        {"x": 20, "y": 30},
    ]
    assert answer["modelVersion"].startswith("ocr-") and answer["numBilledPages"] == 1
    assert fake.received[-1]["fields"] == {"model": "ocr"}
    assert fake.calls[(sha(fake, image), "ocr")] == 1


def test_unregistered_image_gets_a_valid_empty_answer(fake, make_client):
    answer = make_client().ocr(receipt(seed=3, size=(300, 50)), "other.png").body
    assert answer["text"] == "" and answer["pages"][0]["words"] == []
    assert answer["pages"][0]["width"] == 300


def test_document_parse_sends_documented_fields(fake, image, make_client):
    answer = make_client().document_parse(image, "receipt.jpg").body

    assert fake.received[-1]["fields"] == {
        "model": "document-parse",
        "ocr": "auto",
        "mode": "standard",
        "output_formats": '["html", "text"]',
        "coordinates": "true",
    }
    assert [e["content"]["text"] for e in answer["elements"]] == [ln["text"] for ln in LINES]
    first = answer["elements"][0]
    assert first["content"]["markdown"] == ""  # not requested
    assert first["content"]["html"].endswith(">ACME STORE SDN BHD</p>")
    assert first["coordinates"][0] == {"x": round(20 / 240, 4), "y": round(10 / 120, 4)}
    assert answer["usage"] == {"pages": 1}


def test_document_parse_without_coordinates(fake, image, make_client):
    answer = (
        make_client()
        .document_parse(image, "r.jpg", output_formats=["markdown"], coordinates=False)
        .body
    )
    assert fake.received[-1]["fields"]["coordinates"] == "false"
    assert all("coordinates" not in e for e in answer["elements"])
    assert answer["content"]["markdown"].split("\n\n") == [ln["text"] for ln in LINES]
    assert answer["content"]["html"] == ""


def test_extract_fills_the_schema_from_registered_fields(fake, image, make_client):
    answer = make_client().extract(image, "image/jpeg", SCHEMA).body

    assert extracted_fields(answer) == {**FIELDS, "address": ""}
    assert answer["model"].startswith("information-extract-")
    assert answer["usage"]["total_tokens"] > 0
    sent = fake.received[-1]["fields"]
    assert sent["model"] == "information-extract"
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "document_schema", "schema": SCHEMA},
    }


def test_resized_reencoded_image_still_finds_its_ground_truth(fake, make_client):
    original = receipt(seed=1, size=(480, 240))
    fake.register(original, [{**LINES[0], "polygon": [[40, 20], [400, 20], [400, 60], [40, 60]]}])
    small = io.BytesIO()
    Image.open(io.BytesIO(original)).convert("L").resize((240, 120)).save(small, "PNG")

    answer = make_client().ocr(small.getvalue(), "small.png").body

    assert answer["text"] == LINES[0]["text"]
    assert answer["pages"][0]["words"][0]["boundingBox"]["vertices"][0] == {"x": 20, "y": 10}
    assert fake.calls[(sha(fake, original), "ocr")] == 1


@pytest.mark.parametrize(
    ("data", "files"),
    [
        ({"model": "ocr"}, {}),  # plain form field, as the official example
        ({}, {"model": (None, "ocr")}),  # a part without filename, as the cookbook
    ],
)
def test_fake_accepts_model_as_field_or_part(fake, image, data, files):
    response = requests.post(
        f"{fake.url}/document-digitization",
        headers={"Authorization": f"Bearer {fake.api_key}"},
        files={"document": ("r.jpg", image), **files},
        data=data,
        timeout=5,
    )
    assert response.status_code == 200
    assert response.json()["text"].startswith("ACME STORE")


@pytest.mark.parametrize(
    ("formats", "coordinates", "status"),
    [
        ("['html']", "True", 200),  # python literal, as LangChain sends
        ('["html", "markdown"]', "false", 200),  # JSON, as n8n sends
        ("html", "true", 400),
        ("['html']", "yes", 400),
    ],
)
def test_fake_parses_list_and_boolean_variants(fake, image, formats, coordinates, status):
    response = requests.post(
        f"{fake.url}/document-digitization",
        headers={"Authorization": f"Bearer {fake.api_key}"},
        files={"document": ("r.jpg", image)},
        data={"model": "document-parse", "output_formats": formats, "coordinates": coordinates},
        timeout=5,
    )
    assert response.status_code == status
    if status == 200:
        element = response.json()["elements"][0]
        assert element["content"]["html"] and element["content"]["text"] == ""
        assert ("coordinates" in element) == (coordinates == "True")


# -- retried faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["429", "503"])
def test_faults_the_service_did_not_process_are_retried_freely(fake, image, make_client, fault):
    fake.script(fault, fault, fault)
    client = make_client()

    assert client.ocr(image, "r.jpg").body["text"].startswith("ACME")
    assert fake.calls[(sha(fake, image), "ocr")] == 4
    assert client.stats["ocr"]["requests"] == 4
    assert client.stats["ocr"]["http_429"] == (3 if fault == "429" else 0)
    assert client.stats["ocr"]["possibly_billed"] == 0


@pytest.mark.parametrize("fault", ["500", "502", "504", "malformed", "drop", "reset", "truncate"])
def test_faults_after_processing_are_retried_once_and_counted(fake, image, make_client, fault):
    """The service may have processed (and billed) the request: one retry, counted."""
    fake.script(fault)
    client = make_client()
    assert client.ocr(image, "r.jpg").body["text"].startswith("ACME")
    assert fake.calls[(sha(fake, image), "ocr")] == 2
    assert client.stats["ocr"]["possibly_billed"] == 1

    fake.script(fault, fault)
    with pytest.raises(TransientError, match="after 2 attempts"):
        client.ocr(image, "r.jpg")  # a second such fault: no third request
    assert fake.calls[(sha(fake, image), "ocr")] == 4
    assert client.stats["ocr"]["possibly_billed"] == 3
    # what the service billed is covered: answered plus possibly billed, never less
    stats = client.stats["ocr"]
    assert fake.billed_pages["ocr"] <= stats["billed_pages"] + stats["possibly_billed"]


def test_a_free_fault_between_two_billed_ones_does_not_buy_a_third(fake, image, make_client):
    fake.script("500", "503", "500", "ok")
    with pytest.raises(TransientError, match="HTTP 500 after 3 attempts"):
        make_client().ocr(image, "r.jpg")
    assert fake.calls[(sha(fake, image), "ocr")] == 3


def test_no_retry_once_the_service_is_taken_to_be_down(fake, image, make_client):
    fake.outage("ocr")
    client = make_client(max_attempts=6)
    client.halted = lambda: client.stats["ocr"]["requests"] >= 2  # another job tripped
    with pytest.raises(TransientError, match="HTTP 503 after 2 attempts"):
        client.ocr(image, "r.jpg")
    assert fake.calls[(sha(fake, image), "ocr")] == 2


def test_read_timeout_is_retried(fake, image, make_client):
    fake.configure(slow_seconds=3.0)  # far beyond the timeout: a loaded machine stays clear
    fake.script("slow")  # the first answer comes after 3 s; the client gives up after 0.3 s
    client = make_client(timeout=(1.0, 0.3))
    started = time.monotonic()

    assert client.ocr(image, "r.jpg").body["text"].startswith("ACME")
    assert fake.calls[(sha(fake, image), "ocr")] == 2
    assert time.monotonic() - started < 3.0


def test_an_answer_trickling_in_is_cut_at_the_deadline(fake, image, make_client):
    """Each byte comes well within the read timeout; the whole answer would take a minute."""
    fake.configure(trickle_seconds=0.05)
    fake.script("trickle")
    client = make_client(timeout=(1.0, 1.0))
    started = time.monotonic()

    assert client.ocr(image, "r.jpg").body["text"].startswith("ACME")
    assert time.monotonic() - started < 3.0  # one deadline, then a prompt retry
    assert fake.calls[(sha(fake, image), "ocr")] == 2
    assert client.stats["ocr"]["possibly_billed"] == 1


def test_every_event_reaches_the_listener_as_it_happens(fake, image, make_client):
    events: list[tuple[str, str, int, str]] = []
    client = make_client()
    client.listener = lambda endpoint, event, pages=0, request="": events.append(
        (endpoint, event, pages, request)
    )
    fake.script("429", "500")
    answer = client.ocr(image, "r.jpg", pages=1)

    assert [e[1] for e in events] == [
        "requests",
        "http_429",
        "requests",
        "possibly_billed",
        "requests",
        "answered",
    ]
    assert events[-1] == ("ocr", "answered", 1, answer.request) and len(answer.request) == 32
    assert answer.billed_pages == 1 and events[3][2] == 1


def test_retry_after_is_honoured(fake, image, make_client):
    fake.configure(retry_after=0.3)
    fake.script("429-retry-after")
    client = make_client(backoff_initial=0.001, backoff_max=1.0)
    started = time.monotonic()

    client.extract(image, "image/jpeg", SCHEMA)

    assert time.monotonic() - started >= 0.3
    assert client.stats["information-extract"]["http_429"] == 1


def test_retry_after_is_capped_by_backoff_max(fake, image, make_client):
    fake.configure(retry_after=30)
    fake.script("429-retry-after")
    started = time.monotonic()
    make_client(backoff_max=0.1).ocr(image, "r.jpg")
    assert time.monotonic() - started < 2.0


def test_parse_retry_after():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert 25 < parse_retry_after(email.utils.formatdate(time.time() + 30, usegmt=True)) <= 30
    assert parse_retry_after(email.utils.formatdate(time.time() - 30, usegmt=True)) == 0.0


def test_retries_run_out_as_transient_error(fake, image, make_client):
    fake.script(*["503"] * 4)
    with pytest.raises(TransientError, match=r"HTTP 503 after 4 attempts: Service unavailable"):
        make_client().ocr(image, "r.jpg")
    assert fake.calls[(sha(fake, image), "ocr")] == 4


def test_html_error_pages_are_quoted_as_raw_text(fake, image, make_client):
    fake.script(*["502"] * 2)
    with pytest.raises(TransientError, match=r"HTTP 502 after 2 attempts: .*502 Bad Gateway"):
        make_client(max_attempts=2).ocr(image, "r.jpg")


def test_refused_connection_is_retried_then_transient(make_client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket closes
    client = make_client(base_url=f"http://127.0.0.1:{port}/v1", max_attempts=3)
    with pytest.raises(TransientError, match="connection error after 3 attempts"):
        client.ocr(b"\xff\xd8\xff", "r.jpg")
    assert client.stats["ocr"]["requests"] == 3


def test_seeded_random_faults_are_reproducible_and_converge(fake, make_client):
    images = [receipt(seed=i, size=(200 + i, 100)) for i in range(8)]
    fake.configure(fault_rate=0.5, seed=7)
    client = make_client(backoff_max=0.02)

    runs = []
    for _ in range(2):
        fake.reset()
        for data in images:
            assert client.ocr(data, "r.jpg").body["apiVersion"] == "1.1"
        runs.append((dict(fake.calls), dict(fake.faults_injected)))

    assert runs[0] == runs[1]
    assert sum(runs[0][1].values()) > 0
    assert max(runs[0][0].values()) == 2  # a fault never hits one image twice in a row


# -- permanent errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "model", "status", "message"),
    [
        (b"", "ocr", 400, "no document in the request"),
        (None, "layout-analysis", 400, "invalid model name"),
        (b"\xff\xd8\xff" + b"x" * 2000, "ocr", 413, "uploaded document is too large"),
        (b"plain text, not an image", "ocr", 415, "unsupported document format"),
    ],
)
def test_rejected_documents_are_not_retried(
    fake, image, make_client, document, model, status, message
):
    fake.configure(max_document_bytes=1500)
    document = image if document is None else document
    client = make_client()

    with pytest.raises(RejectedByService, match=f"HTTP {status}: {message}") as caught:
        client.ocr(document, "r.jpg", model=model)

    assert caught.value.status == status
    assert client.stats["ocr"]["requests"] == 1
    assert fake.responses[("ocr" if model == "ocr" else "document-digitization", status)] == 1


def test_rejected_extraction_uses_the_nested_envelope(fake, image, make_client):
    with pytest.raises(RejectedByService, match="HTTP 400: invalid model name"):
        make_client().extract(image, "image/jpeg", SCHEMA, model="gpt-4o")
    assert fake.calls_for("information-extract") == 1


@pytest.mark.parametrize("call", ["ocr", "extract", "check_key"])
def test_wrong_key_is_fatal_and_not_retried(fake, image, make_client, call):
    client = make_client(api_key="up_wrong_key")
    with pytest.raises(AuthenticationError) as caught:
        {
            "ocr": lambda: client.ocr(image, "r.jpg"),
            "extract": lambda: client.extract(image, "image/png", SCHEMA),
            "check_key": client.check_key,
        }[call]()
    text = str(caught.value)
    assert text.startswith("Upstage rejected the API key (HTTP 401): Invalid API key")
    assert "UPSTAGE_API_KEY" in text
    assert sum(s["requests"] for s in client.stats.values()) == 1


def test_forbidden_key_is_fatal(fake, image, make_client):
    fake.forbidden_keys.add("up_forbidden")
    with pytest.raises(AuthenticationError, match=r"HTTP 403\): This API key is not allowed"):
        make_client(api_key="up_forbidden").document_parse(image, "r.jpg")


def test_check_key_accepts_a_valid_key(fake, make_client):
    models = make_client().check_key()
    assert "ocr" in [m["id"] for m in models["data"]]


def test_wrong_base_url_is_fatal(fake, image, make_client):
    client = make_client(base_url=fake.url.replace("/v1", "/v2"))
    with pytest.raises(FatalError, match=r"HTTP 404 .* Is the base URL right") as caught:
        client.ocr(image, "r.jpg")
    assert not isinstance(caught.value, AuthenticationError)
    assert client.stats["ocr"]["requests"] == 1


def test_missing_key_is_refused_before_any_request():
    with pytest.raises(AuthenticationError, match="UPSTAGE_API_KEY"):
        UpstageClient("")


def test_malformed_extraction_content_is_transient():
    answer = {"choices": [{"message": {"content": '{"company": "AC'}}]}
    with pytest.raises(TransientError, match="unreadable answer content"):
        extracted_fields(answer)
    with pytest.raises(TransientError, match="not a JSON object"):
        extracted_fields({"choices": [{"message": {"content": "[1, 2]"}}]})


# -- secrets and counters ----------------------------------------------------------------------


def test_the_key_never_leaks(image, tmp_path, caplog):
    secret, wrong = "up_SECRET_live_key_5f3c9a", "up_WRONG_key_8d2e11"
    caplog.set_level(logging.DEBUG)
    raised = []
    with FakeUpstage(
        api_key=secret,
        forbidden_keys=["up_FORBIDDEN_7a7a"],
        echo_key_in_errors=True,
        max_document_bytes=len(image) + 1000,
        slow_seconds=2.0,  # far beyond the 0.2 s timeout, however loaded the machine
    ) as fake:
        fake.register(image, LINES, FIELDS)

        def client(key: str = secret, **kw: Any) -> UpstageClient:
            settings = {
                "base_url": fake.url,
                "max_attempts": 2,
                "backoff_initial": 0.01,
                "backoff_max": 0.02,
                "rate_limits": NO_LIMITS,
                "rate_limit_dir": tmp_path,
                "timeout": (1.0, 0.2),
                **kw,
            }
            return UpstageClient(key, **settings)

        calls: list[tuple[tuple[str, ...], Callable[[], Any]]] = [
            ((), lambda: client(wrong).ocr(image, "r.jpg")),  # 401, the fake echoes the key
            ((), lambda: client(wrong).extract(image, "image/jpeg", SCHEMA)),
            ((), lambda: client("up_FORBIDDEN_7a7a").check_key()),  # 403
            ((), lambda: client().ocr(b"", "r.jpg")),  # 400
            ((), lambda: client().ocr(image + b"x" * 2000, "r.jpg")),  # 413
            ((), lambda: client().ocr(b"text", "r.txt")),  # 415
            ((), lambda: client(base_url=fake.url + "/nowhere").ocr(image, "r.jpg")),  # 404
            (("503", "503"), lambda: client().ocr(image, "r.jpg")),
            (("slow", "slow"), lambda: client().ocr(image, "r.jpg")),  # read timeouts
            ((), lambda: client(base_url="http://127.0.0.1:9/v1").ocr(image, "r.jpg")),
        ]
        for faults, call in calls:
            fake.script(*faults)
            with pytest.raises(
                (AuthenticationError, FatalError, RejectedByService, TransientError)
            ) as caught:
                call()
            raised.append(caught.value)
        healthy = client()
        healthy.ocr(image, "r.jpg")

    assert len({type(e) for e in raised}) == 4
    assert "***" in str(raised[0])  # the echoed key was scrubbed
    for leaked in (secret, wrong):
        for exc in raised:
            assert leaked not in str(exc) and leaked not in repr(exc)
            assert leaked not in str(exc.__cause__) and leaked not in str(exc.__context__)
        assert leaked not in caplog.text
        assert leaked not in repr(healthy) and leaked not in str(healthy.stats)
        assert leaked not in str(vars(healthy))
    assert any("retrying" in r.getMessage() for r in caplog.records)  # logs were captured


def test_stats_count_requests_429s_and_billed_pages(fake, image, make_client):
    client = make_client()
    fake.script("429", "503", endpoint="ocr")
    client.ocr(image, "r.jpg")
    client.document_parse(image, "r.jpg")
    client.extract(image, "image/jpeg", SCHEMA)
    client.extract(image, "image/jpeg", SCHEMA)
    fake.script("503", "503", "503", "503", endpoint="document-parse")
    with pytest.raises(TransientError):
        client.document_parse(image, "r.jpg")

    counters = ("requests", "http_429", "answered", "billed_pages", "possibly_billed")
    assert client.stats == {
        "ocr": dict(zip(counters, (3, 1, 1, 1, 0), strict=True)),
        "document-parse": dict(zip(counters, (5, 0, 1, 1, 0), strict=True)),
        "information-extract": dict(zip(counters, (2, 0, 2, 2, 0), strict=True)),
        "models": dict(zip(counters, (0, 0, 0, 0, 0), strict=True)),
    }


# -- rate limits -------------------------------------------------------------------------------


def test_fake_enforces_its_rate_limit(fake, image, make_client):
    fake.configure(rate_limits={"ocr": 5})
    client = make_client(max_attempts=1)
    outcomes = []
    for _ in range(8):
        try:
            client.ocr(image, "r.jpg")
            outcomes.append("ok")
        except TransientError as exc:
            outcomes.append(str(exc))
    assert outcomes[:5] == ["ok"] * 5
    assert all("HTTP 429" in o for o in outcomes[5:])
    assert fake.rate_limited["ocr"] == 3 and client.stats["ocr"]["http_429"] == 3


def test_client_limiter_keeps_under_the_service_limit(fake, image, make_client):
    fake.configure(rate_limits={"ocr": 20})
    client = make_client(rate_limits={"ocr": 16}, max_attempts=1)
    started = time.monotonic()
    for _ in range(22):
        client.ocr(image, "r.jpg")
    assert time.monotonic() - started >= 21 / 16 - 0.01
    assert fake.rate_limited["ocr"] == 0


def test_the_rate_slot_is_claimed_after_the_body_is_encoded(fake, image, make_client, monkeypatch):
    """Encoding the body (an image, base64 for extraction) takes time under load; claimed
    before it, a slot could leave two requests closer together than the limit."""
    client = make_client(rate_limits={"information-extract": 50})
    events: list[str] = []
    prepare, acquire, send = (
        client._session.prepare_request,
        client.limiter.acquire,
        client._session.send,
    )
    monkeypatch.setattr(
        client._session, "prepare_request", lambda r: events.append("encode") or prepare(r)
    )
    monkeypatch.setattr(client.limiter, "acquire", lambda e: events.append("claim") or acquire(e))
    monkeypatch.setattr(
        client._session, "send", lambda r, **k: events.append("send") or send(r, **k)
    )
    client.extract(image, "image/jpeg", SCHEMA)
    client.extract(image, "image/jpeg", SCHEMA)
    assert events == ["encode", "claim", "send"] * 2


def test_a_429_pauses_the_shared_limiter(fake, image, make_client):
    fake.script("429")  # no Retry-After: the limiter pauses for min(1 s, backoff_max)
    client = make_client(rate_limits={"ocr": 50}, backoff_initial=0.001, backoff_max=0.3)
    client.ocr(image, "r.jpg")
    first, retry = fake.arrivals["ocr"]
    assert retry - first >= 0.3  # held by the limiter: the backoff itself is ~1 ms


# -- the fake as a separate process ------------------------------------------------------------


def test_fake_runs_as_a_script_with_a_ground_truth_directory(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "box").mkdir()
    (tmp_path / "key").mkdir()
    (tmp_path / "img" / "007.jpg").write_bytes(receipt(seed=2))
    (tmp_path / "box" / "007.csv").write_text(
        "20,10,200,10,200,30,20,30,NO.53 55,57 & 59, JALAN SAGU\n"
        "20,40,160,42,160,60,20,58,TOTAL 9.00\n"
    )
    (tmp_path / "key" / "007.json").write_text(json.dumps({"company": "SAGU", "total": "9.00"}))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ocrkie.testing.upstage_fake",
            "--port",
            "0",
            "--ground-truth",
            str(tmp_path),
            "--api-key",
            "up_cli_key",
            "--faults",
            "503",
            "--fault-rate",
            "1.0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with UpstageClient(
            "up_cli_key",
            base_url=url,
            backoff_initial=0.01,
            backoff_max=0.02,
            rate_limits=NO_LIMITS,
            rate_limit_dir=tmp_path / "slots",
        ) as client:
            answer = client.ocr((tmp_path / "img" / "007.jpg").read_bytes(), "007.jpg").body
            fields = extracted_fields(
                client.extract(
                    (tmp_path / "img" / "007.jpg").read_bytes(), "image/jpeg", SCHEMA
                ).body
            )
        assert answer["text"] == "NO.53 55,57 & 59, JALAN SAGU\nTOTAL 9.00"
        assert fields["company"] == "SAGU" and fields["total"] == "9.00"

        base = url.removesuffix("/v1")
        stats = requests.get(f"{base}/_fake/stats", timeout=5).json()
        assert stats["calls_total"] == {"ocr": 2, "information-extract": 2}
        assert stats["faults"] == {"503": 2} and stats["registered"] == 1
        assert requests.post(f"{base}/_fake/reset", timeout=5).json() == {"ok": True}
        assert requests.get(f"{base}/_fake/stats", timeout=5).json()["calls_total"] == {}

        control = {"config": {"fault_rate": 0.0}, "script": {"faults": ["500", "500"]}}
        for name, body in control.items():
            assert requests.post(f"{base}/_fake/{name}", json=body, timeout=5).status_code == 200
        bad = requests.post(f"{base}/_fake/config", json={"api_key": "x"}, timeout=5)
        assert bad.status_code == 400
        with UpstageClient(
            "up_cli_key",
            base_url=url,
            backoff_initial=0.01,
            backoff_max=0.02,
            rate_limits=NO_LIMITS,
            rate_limit_dir=tmp_path / "slots",
        ) as client:
            client.check_key()
        stats = requests.get(f"{base}/_fake/stats", timeout=5).json()
        assert stats["responses"] == {"models": {"500": 2, "200": 1}}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
