"""The API only where local is unsure: the learned model reads every document, and those with
a field it reads less sure than ``cascade.threshold`` go to Upstage Information Extraction.

Each value names the engine that gave it (``engine``: ``ocrkie-learned`` or
``upstage-information-extract``) and the record's ``engine.sent`` says whether the document
went to the service. A sent document takes the service's value for all of its fields
(``api_values: all``: on receipts, more right values at every threshold) or for those below
the threshold only (``uncertain``). The service's answer of a document is kept in the content
cache as ``kie_backend: upstage`` keeps it, so another threshold, or that backend, pays for no
document twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Self

from ..errors import FatalError
from ..evidence import locate, rows_of
from ..settings import UNIT, Settings, setting
from . import Document, Extraction, Extractor
from .learned import LearnedExtractor
from .upstage import UpstageExtractor

CHOICES = ["all", "uncertain"]


class CascadeExtractor(Extractor):
    """The learned model on every document; Upstage Information Extraction where it is unsure."""

    paid = True
    settings_block = "cascade"
    settings_schema: ClassVar[Settings] = {
        "threshold": setting(
            0.5, "documents with a field read less sure than this go to the API", **UNIT
        ),
        "api_values": setting(
            "all",
            "a sent document takes the API's value for the uncertain fields, or for all",
            enum=CHOICES,
        ),
    }

    def __init__(
        self,
        local: LearnedExtractor,
        api: UpstageExtractor,
        threshold: float = 0.5,
        api_values: str = "all",
    ):
        self.local, self.api = local, api
        self.threshold, self.api_values = threshold, api_values
        self.batch_size = local.batch_size
        self.guardrails = local.guardrails

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        settings = cls.settings(config)
        local = LearnedExtractor.from_config(config, threads)
        api = UpstageExtractor.from_config(config, threads)
        return cls(local, api, settings["threshold"], settings["api_values"])

    def identity(self) -> dict[str, Any]:
        return {
            "name": "ocrkie-cascade",
            "local": self.local.identity(),
            "api": self.api.identity(),
            "threshold": self.threshold,
            "api_values": self.api_values,
        }

    def paid_reader(self) -> Extractor:
        return self.api

    def expected_share(self) -> tuple[float, str] | None:
        """The share of documents sent that the model's card records at this threshold
        (``cascade`` in its card, written by ``scripts/bench/kie_cascade.py --record``), and
        where it was measured."""
        for measured in self.local.card.get("cascade", []):
            if measured["threshold"] == self.threshold:
                where = f"{measured['documents']} documents of {measured['ocr']} OCR"
                return measured["sent"], f"the model card's share at this threshold, on {where}"
        return None

    def estimate(self, images: int, jobs: int) -> tuple[float, str] | None:
        """The local model's time, and the service's for the share of the images the card
        expects to be sent (all of them where it records none)."""
        share = (self.expected_share() or (1.0, ""))[0]
        sent = round(images * share)
        local = self.local.estimate(images, jobs) or (0.0, "")
        api = self.api.estimate(sent, jobs) if sent else None
        if api is None:
            return local
        return local[0] + api[0], f"{sent} sent to the API: {api[1]}"

    def check_upstream(self, ocr_identity: dict[str, Any]) -> list[str]:
        return self.local.check_upstream(ocr_identity)

    def resources(self, remote: bool) -> dict[str, int]:
        return self.api.resources(remote)

    def extract(self, document: Document) -> Extraction:
        return self.extract_many([document])[0]

    def extract_many(self, documents: Sequence[Document]) -> list[Any]:
        """The local model reads the batch; its unsure documents go to the service, up to
        ``upstage.concurrency`` at once. A document whose request failed answers its error
        (the next run sends it again)."""
        read = self.local.extract_many(documents)
        unsure = [self.uncertain(extraction) for extraction in read]
        sent = [i for i, fields in enumerate(unsure) if fields]
        with ThreadPoolExecutor(max(1, min(self.api.concurrency, len(sent) or 1))) as pool:
            answers = dict(
                zip(sent, pool.map(self._ask, [documents[i] for i in sent]), strict=True)
            )
        results: list[Any] = []
        for index, (document, extraction) in enumerate(zip(documents, read, strict=True)):
            answer = answers.get(index)
            if isinstance(answer, BaseException):
                results.append(answer)
            else:
                results.append(self._combined(document, extraction, answer, unsure[index]))
        return results

    def uncertain(self, extraction: Extraction) -> list[str]:
        """The fields the local model read less sure than the threshold."""
        return [
            name
            for name, field in extraction.fields.items()
            if float(field.get("confidence") or 0.0) < self.threshold
        ]

    def _ask(self, document: Document) -> Extraction | BaseException:
        """The service's reading of the document: from the cache where it was paid for."""
        if document.recall is not None and (kept := document.recall(self.api)) is not None:
            return kept
        try:
            pages = document.load_pages() if document.load_pages else document.pages
            answer = self.api.extract(Document(document.ocr, document.image, pages))
        except FatalError:
            raise
        except Exception as exc:  # its own error record; the others keep their results
            return exc
        if document.keep is not None:
            document.keep(self.api, answer)
        return answer

    def _combined(
        self,
        document: Document,
        local: Extraction,
        answer: Extraction | None,
        unsure: list[str],
    ) -> Extraction:
        local_name = self.local.identity()["name"]
        fields = {name: {**field, "engine": local_name} for name, field in local.fields.items()}
        facts: dict[str, Any] = {"sent": answer is not None, "uncertain": unsure}
        if answer is None:
            return Extraction(fields, facts=facts)
        rows = rows_of(document.ocr)
        taken = unsure if self.api_values == "uncertain" else list(fields)
        api_name = self.api.identity()["name"]
        for name in taken:
            value = answer.fields[name]
            fields[name] = {
                "type": value["type"],
                **locate(value["value"], rows),
                "normalized": value["normalized"],
                "engine": api_name,
            }
        facts |= {"model_version": answer.facts.get("model_version")}
        return Extraction(fields, answer.raw, answer.billing, facts)

    # -- what the service part does: the key, the dry run's warning, usage, retries ---------

    def preflight(self) -> None:
        self.api.preflight()

    def unready(self) -> list[str]:
        return self.api.unready()

    def usage(self) -> dict[str, dict[str, int]]:
        return self.api.usage()

    def observe(self, listener: Callable[[str, str], None]) -> None:
        self.api.observe(listener)

    def stop_retrying_when(self, halted: Callable[[], bool]) -> None:
        self.api.stop_retrying_when(halted)

    def close(self) -> None:
        self.local.close()
        self.api.close()
