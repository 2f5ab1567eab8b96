"""HTTP client for the Upstage Document AI APIs: OCR, Document Parse, Information Extraction.

Every failure is classified once, with the classes of ``ocrkie.errors``:

- What the service provably did not process (a connection that could not be made, 408, 429,
  503) is retried freely, with exponential backoff and jitter (``Retry-After`` honoured).
- What it may have processed, and billed (a read timeout, a connection dropped or an answer
  cut off after the request went out, a 200 whose body is not JSON, other 5xx), is retried at
  most once: the API takes no idempotency key, so a retry may be billed twice. Each such
  attempt is reported as ``possibly_billed``.
- When retries run out: TransientError. 400/413/415 (and other per-request 4xx):
  RejectedByService, not retried. 401/403: AuthenticationError; 404/405: FatalError (wrong
  base URL). Neither is retried.

Every request has a deadline (``timeout`` 's read part, from the moment it is sent), however
slowly the answer trickles in. Each request sent, 429 received, answer (with its billed pages)
and possibly billed attempt is told to ``listener`` as it happens: the jobs' usage ledgers.

The API key is kept in an auth object that never prints it, and it is scrubbed from any server
message quoted in an exception. See notes/upstage-api.md for the API facts used here.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import logging
import mimetypes
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import tenacity
import urllib3
from requests.auth import AuthBase

from . import __version__
from .errors import AuthenticationError, FatalError, OcrkieError, RejectedByService, TransientError
from .ratelimit import RateLimiter

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.upstage.ai/v1"
ENDPOINTS = ("ocr", "document-parse", "information-extract", "models")

AUTH = {401, 403}
WRONG_URL = {404, 405}
NOT_PROCESSED = {408, 429, 503}  # the service says it did not take the request on
MAX_MESSAGE = 300  # characters of a server message quoted in an exception
MAX_BILLED_FAILURES = 2  # a second possibly billed failure ends the call: one retry of it


@dataclass(frozen=True)
class Answer:
    """An answered request: the service's JSON, an id for it, and the pages it billed."""

    body: dict[str, Any]
    request: str
    billed_pages: int


class Listener(Protocol):
    def __call__(self, endpoint: str, event: str, pages: int = 0, request: str = "") -> None: ...


class _Retryable(Exception):
    """One failed attempt worth retrying (internal: becomes TransientError when retries end).
    ``billed``: the service may have processed (and billed) the request."""

    def __init__(
        self,
        fault: str,
        detail: str,
        status: int | None = None,
        retry_after: float | None = None,
        billed: bool = False,
    ) -> None:
        super().__init__(f"{fault}: {detail}" if detail else fault)
        self.fault = fault
        self.detail = detail
        self.status = status
        self.retry_after = retry_after
        self.billed = billed


class _BearerAuth(AuthBase):
    """Adds the Authorization header; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._key}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"

    def redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _is_loopback(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1: where a request never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class UpstageClient:
    """A thread-safe-enough client (one ``requests.Session``) for one API key.

    ``timeout`` is one number for both the connect and read timeouts, or a (connect, read) pair.
    ``rate_limits`` overrides the per-endpoint requests/second of ``ratelimit.DEFAULT_RATES``
    (0 disables the limiter for that endpoint); the limits are shared with every process on the
    machine that uses the same ``rate_limit_dir`` and base URL.
    """

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float | tuple[float, float] = (10.0, 180.0),
        max_attempts: int = 6,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        rate_limits: Mapping[str, float] | None = None,
        rate_limit_dir: str | Path | None = None,
    ) -> None:
        if not api_key:
            raise AuthenticationError("no Upstage API key given: set UPSTAGE_API_KEY")
        url = urlsplit(base_url)
        if url.scheme != "https" and not (url.scheme == "http" and _is_loopback(url.hostname)):
            raise FatalError(
                f"upstage.base_url is {base_url}: use https:// (the API key would cross the "
                "network in clear text; plain http:// is accepted only to localhost)"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        self.deadline_s = self.timeout[1]  # a whole request, from the moment it is sent
        self.max_attempts = max(1, max_attempts)
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        host = urlsplit(self.base_url).netloc.replace(":", "_") or "local"
        self.limiter = RateLimiter(rate_limits, rate_limit_dir, namespace=f"{host}-")
        self._auth = _BearerAuth(api_key)
        self._session = requests.Session()
        self._session.auth = self._auth
        agent = f"ocrkie/{__version__} {requests.utils.default_user_agent()}"
        self._session.headers["User-Agent"] = agent
        self._lock = threading.Lock()
        self._stats = {e: dict.fromkeys(COUNTERS, 0) for e in ENDPOINTS}
        # told of every request sent, 429, answer and possibly billed attempt (a usage ledger)
        self.listener: Listener | None = None
        # asked before every retry: the service is taken to be down, retry no more
        self.halted: Callable[[], bool] = lambda: False

    def __repr__(self) -> str:
        return f"UpstageClient(base_url={self.base_url!r}, api_key=***)"

    def __enter__(self) -> UpstageClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint: ``requests`` sent (retries included), ``http_429`` answers received,
        requests ``answered`` and the ``billed_pages`` the service reported for them, and the
        pages of ``possibly_billed`` attempts (lost answers). A copy."""
        with self._lock:
            return {e: dict(c) for e, c in self._stats.items()}

    # -- API calls ----------------------------------------------------------------------------

    def ocr(self, document: bytes, filename: str, model: str = "ocr", pages: int = 1) -> Answer:
        """Document OCR of a file of ``pages`` pages: ``text``, ``pages[].words[]``, ..."""
        return self._call(
            "ocr",
            "POST",
            "/document-digitization",
            pages,
            files={"document": (filename, document, _mime_type(filename))},
            data={"model": model},
        )

    def document_parse(
        self,
        document: bytes,
        filename: str,
        model: str = "document-parse",
        ocr: str = "auto",
        mode: str = "standard",
        output_formats: Iterable[str] = ("html", "text"),
        coordinates: bool = True,
        pages: int = 1,
    ) -> Answer:
        """Synchronous Document Parse: ``elements``, ``content``, ..."""
        return self._call(
            "document-parse",
            "POST",
            "/document-digitization",
            pages,
            files={"document": (filename, document, _mime_type(filename))},
            data={
                "model": model,
                "ocr": ocr,
                "mode": mode,
                "output_formats": json.dumps(list(output_formats)),
                "coordinates": "true" if coordinates else "false",
            },
        )

    def extract(
        self,
        document: bytes,
        mime_type: str,
        schema: Mapping[str, Any],
        model: str = "information-extract",
        schema_name: str = "document_schema",
        pages: int = 1,
    ) -> Answer:
        """Universal Information Extraction with a JSON schema: a chat completion, whose values
        ``extracted_fields(answer.body)`` decodes."""
        data_url = f"data:{mime_type};base64,{base64.b64encode(document).decode('ascii')}"
        body = {
            "model": model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": dict(schema)},
            },
        }
        path = "/information-extraction"
        return self._call("information-extract", "POST", path, pages, json=body)

    def check_key(self) -> dict[str, Any]:
        """Cheap credential check (``GET /models``); AuthenticationError if the key is refused."""
        return self._call("models", "GET", "/models", 0).body

    # -- one logical call: retries around attempts --------------------------------------------

    def _call(self, endpoint: str, method: str, path: str, pages: int, **kwargs: Any) -> Answer:
        """``pages``: the pages the request carries (what a lost answer may have cost; 0 for
        a request that costs nothing, which is retried freely)."""
        billed_failures = 0

        def attempt() -> Answer:
            nonlocal billed_failures
            try:
                return self._attempt(endpoint, method, path, pages, **kwargs)
            except _Retryable as exc:
                if exc.billed and pages:
                    billed_failures += 1
                    self._count(endpoint, "possibly_billed", pages)
                raise

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts)
            | (lambda _: billed_failures >= MAX_BILLED_FAILURES)
            | (lambda _: self.halted()),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            before_sleep=lambda state: self._log_retry(endpoint, state),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _Retryable as exc:
            attempts = retrying.statistics.get("attempt_number", self.max_attempts)
            message = f"Upstage {endpoint}: {exc.fault} after {attempts} attempts: {exc.detail}"
            raise TransientError(message, status=exc.status) from None

    def _attempt(self, endpoint: str, method: str, path: str, pages: int, **kwargs: Any) -> Answer:
        url = self.base_url + path
        # The body (an image, base64 for extraction) is encoded before the rate-limit slot is
        # claimed, so that the slot is taken right before the request goes out: under load,
        # encoding after the claim let two requests leave closer together than the limit.
        prepared = self._session.prepare_request(requests.Request(method, url, **kwargs))
        self.limiter.acquire(endpoint)
        self._count(endpoint, "requests")
        log.debug("%s %s (%s)", method, url, endpoint)
        deadline = time.monotonic() + self.deadline_s
        try:
            response = self._session.send(prepared, timeout=self.timeout, stream=True)
        except requests.ConnectTimeout as exc:
            raise _Retryable("connection error", self._clip(str(exc))) from None
        except requests.Timeout as exc:
            raise _Retryable("timeout", self._clip(str(exc)), billed=True) from None
        except requests.ConnectionError as exc:
            billed = not _never_sent(exc)
            raise _Retryable("connection error", self._clip(str(exc)), billed=billed) from None
        except requests.RequestException as exc:
            message = self._clip(str(exc))
            raise FatalError(f"Upstage {endpoint}: request failed: {message}") from None
        with response:
            content = self._read_body(response, deadline)
        return self._handle(endpoint, response, content, pages)

    def _read_body(self, response: requests.Response, deadline: float) -> bytes:
        """The whole body, or a timeout once the deadline passes: a watchdog shuts the socket
        down (urllib3's way to stop a read from another thread) however the body trickles."""
        watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), _shutdown, [response])
        watchdog.start()
        try:
            content = response.content
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            if time.monotonic() >= deadline:
                raise self._late() from None
            raise _Retryable("connection error", self._clip(str(exc)), billed=True) from None
        finally:
            watchdog.cancel()
        if time.monotonic() >= deadline:
            raise self._late()
        return content

    def _late(self) -> _Retryable:
        detail = f"no complete answer within {self.deadline_s:g} s (upstage.timeout_s)"
        return _Retryable("timeout", detail, billed=True)

    def _handle(
        self, endpoint: str, response: requests.Response, content: bytes, pages: int
    ) -> Answer:
        status = response.status_code
        if 200 <= status < 300:
            try:
                body = json.loads(content)
            except ValueError:
                body = None
            if not isinstance(body, dict):
                text = self._clip(content.decode("utf-8", "replace"))
                raise _Retryable(f"malformed JSON in HTTP {status}", text, billed=True)
            return self._answered(endpoint, body, pages)
        message = self._server_message(content, response.reason)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429:
            self._count(endpoint, "http_429")
            pause = retry_after if retry_after is not None else 1.0
            self.limiter.pause(endpoint, min(pause, self.backoff_max))
        if status in NOT_PROCESSED:
            raise _Retryable(f"HTTP {status}", message, status, retry_after)
        if status >= 500 and status != 501:
            raise _Retryable(f"HTTP {status}", message, status, retry_after, billed=True)
        raise self._permanent_error(endpoint, status, message, response.url)

    def _answered(self, endpoint: str, body: dict[str, Any], pages: int) -> Answer:
        answer = Answer(body, uuid.uuid4().hex, billed_pages(endpoint, body, pages))
        if endpoint != "models":
            self._count(endpoint, "answered", answer.billed_pages, answer.request)
        return answer

    def _permanent_error(self, endpoint: str, status: int, message: str, url: str) -> OcrkieError:
        if status in AUTH:
            return AuthenticationError(
                f"Upstage rejected the API key (HTTP {status}): {message}. "
                "Check the key, or set UPSTAGE_API_KEY to a valid one.",
                status=status,
            )
        if status in WRONG_URL:
            return FatalError(
                f"Upstage {endpoint}: HTTP {status} from {self._auth.redact(url)}: {message}. "
                "Is the base URL right?",
                status=status,
            )
        if 400 <= status < 500:
            return RejectedByService(f"Upstage {endpoint}: HTTP {status}: {message}", status=status)
        return FatalError(f"Upstage {endpoint}: unexpected HTTP {status}: {message}", status=status)

    # -- helpers ------------------------------------------------------------------------------

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Exponential backoff with 'equal jitter', at least Retry-After, capped at backoff_max."""
        base = min(self.backoff_max, self.backoff_initial * 2 ** (state.attempt_number - 1))
        wait = random.uniform(base / 2, base)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.backoff_max)

    def _log_retry(self, endpoint: str, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        fault = getattr(exc, "fault", type(exc).__name__)
        wait = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "Upstage %s: %s (attempt %d/%d); retrying in %.2f s",
            endpoint,
            fault,
            state.attempt_number,
            self.max_attempts,
            wait,
        )

    def _server_message(self, content: bytes, reason: str | None) -> str:
        """The message of either error envelope, else the raw text; clipped and key-free."""
        try:
            body = json.loads(content)
        except ValueError:
            body = None
        message = None
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(body.get("message"), str):
                message = body["message"]
            elif isinstance(error, dict) and isinstance(error.get("message"), str):
                message = error["message"]
            elif isinstance(error, str):
                message = error
        if message is None:
            message = content.decode("utf-8", "replace").strip() or reason or ""
        return self._clip(message)

    def _clip(self, text: str) -> str:
        text = self._auth.redact(" ".join(text.split()))
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."

    def _count(self, endpoint: str, event: str, pages: int = 0, request: str = "") -> None:
        with self._lock:
            counts = self._stats[endpoint]
            if event == "answered":
                counts["answered"] += 1
                counts["billed_pages"] += pages
            else:
                counts[event] += pages if event == "possibly_billed" else 1
        if self.listener is not None:
            self.listener(endpoint, event, pages, request)


COUNTERS = ("requests", "http_429", "answered", "billed_pages", "possibly_billed")


def billed_pages(endpoint: str, body: Mapping[str, Any], sent: int = 1) -> int:
    """The pages an answer says it billed (OCR: ``numBilledPages``; Document Parse and
    Information Extraction: ``usage.pages``); the pages ``sent`` where it does not say."""
    if endpoint == "ocr":
        value = body.get("numBilledPages")
    else:
        value = (body.get("usage") or {}).get("pages")
    return max(1, _int(value, sent))


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Whether the connection could not even be made (the request never left)."""
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # a MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)


def _shutdown(response: requests.Response) -> None:
    try:
        response.raw.shutdown()
    except (AttributeError, RuntimeError, ValueError, OSError):
        response.close()  # released or closed already: nothing is being read


def extracted_fields(response: Mapping[str, Any]) -> dict[str, Any]:
    """Decode the JSON object in ``choices[0].message.content`` of an extraction response."""
    try:
        content = response["choices"][0]["message"]["content"]
        fields = json.loads(content)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        message = f"Upstage information-extract: unreadable answer content ({exc!r})"
        raise TransientError(message) from None
    if not isinstance(fields, dict):
        raise TransientError("Upstage information-extract: answer content is not a JSON object")
    return fields


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - time.time())


def _mime_type(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
