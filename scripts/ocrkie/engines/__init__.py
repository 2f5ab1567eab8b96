"""The engine contract: what every OCR, KIE and layout engine declares and returns.

An engine is built from the config alone (``from_config``) without loading a model or
touching the network: the plan asks engines for their identity and resources when the
workflow is parsed, and a shard served from the cache never loads a model at all. The batch
calls (``recognize_many`` ...) take the pages of up to ``batch_size`` images at once; their
defaults loop. Failures follow ``errors``: raise an ``ImageError`` for a page the engine
cannot use, a ``FatalError`` when no page can succeed; the stage runner does the rest.

An engine that reads a batch in several requests may answer an exception in place of the
results of the pages whose request failed, so that the others keep theirs.

Adding an engine is one file: a subclass of one of the stage interfaces below (a line
recogniser: of ``lines.LineReader``) with its ``guardrails`` (devices, batch sizes, speed on
a CPU, model kind) and its settings (``settings_block``, ``settings_schema``: each setting's
type, default and one line of documentation). The workflow checks that block with the rest of
the config. Name it in the config as ``module:Class`` or ``path/to/file.py:Class``, or add
a line to ``registry.BACKENDS`` to give it a short name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from ..images import PageImage
from ..page import Line
from ..settings import Settings
from .guardrails import Guardrails


@dataclass
class Recognition:
    """OCR of one page: lines in page pixels."""

    lines: list[Line]
    raw: dict[str, Any] | None = None  # a service's answer, kept so results can be re-derived
    billing: dict[str, Any] | None = None  # what the answer cost: endpoint, billed_pages
    facts: dict[str, Any] = field(default_factory=dict)  # learnt from the answer (model_version)


@dataclass
class Extraction:
    """The fields of one document, each ``{type, value, normalized, confidence, source}``."""

    fields: dict[str, dict[str, Any]]
    raw: dict[str, Any] | None = None
    billing: dict[str, Any] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Layout:
    """Layout elements of one page (category, content, box)."""

    elements: list[dict[str, Any]]
    raw: dict[str, Any] | None = None
    billing: dict[str, Any] | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """What an extractor reads: the document's OCR record (its pages that were read, as one)
    and where its image is; for an extractor that reads the image itself, those pages."""

    ocr: dict[str, Any]
    image: str  # a local path or an s3:// URI
    pages: Sequence[PageImage] = ()
    # For an extractor that reads the image of only some documents (a cascade): its pages,
    # decoded when asked; and the content cache of another extractor's result of the
    # document (``recall(engine)``, ``keep(engine, result)``), keyed as that extractor's own.
    load_pages: Callable[[], Sequence[PageImage]] | None = None
    recall: Callable[[Extractor], Extraction | None] | None = None
    keep: Callable[[Extractor, Extraction], None] | None = None


class Engine(ABC):
    """What every engine declares, whatever its stage."""

    device: str = "cpu"  # where it computes: cpu, cuda:N, or the name of a service
    cpu_because: str = ""  # why a GPU engine computes on the CPU, when it was not told to
    concurrency: int = 1  # batches in flight at once (API engines wait on the network)
    batch_size: int = 1  # images per batch call
    paid: bool = False  # each result costs money (the dry run forecasts what it would send)
    in_worker: bool = False  # native code that may hang or grow: run in a child the job can stop
    reads_files: bool = False  # it sends the file itself (a service): pages carry its bytes
    reads_documents: bool = False  # it reads an image's pages together (in one batch)
    # The BCP 47 tag of the language its models are set up for ("": several, or not known):
    # the exports declare it unless the config's ``language`` says otherwise.
    language: str = ""
    # Identity keys that change only how documents of several pages are read: a single
    # page's cached result stays valid when they change.
    document_keys: ClassVar[tuple[str, ...]] = ()
    guardrails: ClassVar[Guardrails] = Guardrails()  # devices, batch sizes, CPU speed, model
    settings_block: ClassVar[str] = ""  # its block in the config ("": it has none)
    # JSON Schema of each setting in the block: type, default, description.
    settings_schema: ClassVar[Settings] = {}

    @classmethod
    @abstractmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        """Cheap: no model is loaded and no connection made until the first page."""

    @classmethod
    def settings(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Its settings block in ``config``, with the defaults of what it leaves out."""
        defaults = {name: spec["default"] for name, spec in cls.settings_schema.items()}
        return defaults | config.get(cls.settings_block, {})

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Name, version, model and every parameter that changes the output. It keys the
        content cache and names the shard manifests, so a change reruns what it affects."""

    def threads(self, configured: int) -> int:
        """CPU threads a job of this engine takes."""
        return configured

    def resources(self, remote: bool) -> dict[str, int]:
        """Snakemake resources a job requests besides memory; ``remote``: jobs run on
        machines of their own (AWS Batch)."""
        return {}

    def check_upstream(self, ocr_identity: dict[str, Any]) -> list[str]:
        """Raise a ``FatalError`` if the OCR engine this engine reads (a KIE engine) cannot
        serve it; the warnings to show if it may serve it less well. Checked when the
        workflow is parsed, before any job."""
        return []

    def requests_for(self, pages: int, file_pages: int) -> int:
        """Requests (engine calls) that reading ``pages`` pages of a file of ``file_pages``
        takes: for a paid engine's forecast."""
        return pages

    def estimate(self, images: int, jobs: int) -> tuple[float, str] | None:
        """About how many seconds ``images`` images take in ``jobs`` jobs at once, and what
        that rests on; None where nothing is known."""
        per_image = self.guardrails.typical_seconds.get(self.device.partition(":")[0])
        if per_image is None:
            return None
        return images * per_image / max(1, jobs), f"typically {per_image:g} s an image a job"

    def preflight(self) -> None:  # noqa: B027 (optional: most engines need no check)
        """Checks before the first job (credentials); raise a ``FatalError`` to stop the run."""

    def unready(self) -> list[str]:
        """What ``preflight`` would stop a run on, found without any request: a dry run
        warns of it."""
        return []

    def usage(self) -> dict[str, dict[str, int]]:
        """Requests sent so far, per endpoint (``requests``, ``http_429``), for the log."""
        return {}

    def observe(self, listener: Callable[[str, str], None]) -> None:  # noqa: B027 (optional)
        """Tell ``listener(endpoint, event)`` of every request sent, as it is sent (engines
        that call a service): the job's usage ledger."""

    def stop_retrying_when(self, halted: Callable[[], bool]) -> None:  # noqa: B027
        """Ask ``halted()`` before retrying a failed request (engines that call a service):
        once the service is taken to be down, retries stop."""

    def close(self) -> None:  # noqa: B027 (optional)
        """Release the model or the connections."""


class OcrEngine(Engine):
    stage: ClassVar[str] = "ocr"

    @abstractmethod
    def recognize(self, page: PageImage) -> Recognition: ...

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        return [self.recognize(page) for page in pages]


class Extractor(Engine):
    stage: ClassVar[str] = "kie"
    reads_ocr: bool = True  # False: it reads the image; the stage finds its values in the OCR

    @abstractmethod
    def extract(self, document: Document) -> Extraction: ...

    def extract_many(self, documents: Sequence[Document]) -> list[Extraction]:
        return [self.extract(document) for document in documents]

    def paid_reader(self) -> Extractor | None:
        """The extractor within it that a service bills, where that is not itself (a
        cascade's): a dry run forecasts what it would be sent at most."""
        return None

    def expected_share(self) -> tuple[float, str] | None:
        """With a ``paid_reader``: the share of documents it is expected to send, measured
        where (None: not known before it reads)."""
        return None


class LayoutParser(Engine):
    stage: ClassVar[str] = "layout"

    @abstractmethod
    def parse(self, page: PageImage) -> Layout: ...

    def parse_many(self, pages: Sequence[PageImage]) -> list[Layout]:
        return [self.parse(page) for page in pages]
