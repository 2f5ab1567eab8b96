"""The failure policy and the cache, exercised through small fake engines (as OCRmyPDF tests
its pipeline with crashing engine plugins): real images, a real LMDB cache, real records."""

from __future__ import annotations

import io
import random
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Self

import lmdb
import pytest
from PIL import Image

from conftest import SAMPLE_IMAGES
from ocrkie.breaker import Breaker, clear_outages, outages
from ocrkie.cache import BestEffort, LmdbCache, NoCache
from ocrkie.engines import Document, Extraction, Extractor, OcrEngine, Recognition
from ocrkie.errors import ModelLoadError, ServiceUnavailable, TransientError, UnreadableImage
from ocrkie.formats import error_info
from ocrkie.images import ImageLimits, PageDecoder, PageImage
from ocrkie.inputs import InputImage, image_id
from ocrkie.page import Line, Word
from ocrkie.results import Results
from ocrkie.stages import make_stage, run_shard
from ocrkie.worker import GuardedDecoder, InWorker

LIMITS = ImageLimits(max_pixels=10**8, max_side=4096)


class FakeOcr(OcrEngine):
    """Reads every page as one line, ``TOTAL 9.00``; fails as told on pages named ``bad*``."""

    def __init__(self, fail_with: BaseException | None = None, batch_size: int = 1, workers=1):
        self.fail_with = fail_with
        self.batch_size = batch_size
        self.concurrency = workers
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls()

    def identity(self) -> dict[str, Any]:
        return {"name": "fake-ocr", "version": "1"}

    def recognize(self, page: PageImage) -> Recognition:
        if page.name.startswith("bad") and self.fail_with is not None:
            raise self.fail_with
        box = [[10.0, 10.0], [200.0, 10.0], [200.0, 40.0], [10.0, 40.0]]
        words = [Word("TOTAL", 0.99, box), Word("9.00", 0.98, box)]
        return Recognition([Line("TOTAL 9.00", 0.985, box, words)])

    def recognize_many(self, pages):
        with self._lock:
            self.calls.append([page.name for page in pages])
        return super().recognize_many(pages)


class BatchOnlyOcr(FakeOcr):
    """A GPU-style engine: one call per batch, which fails as a whole on a bad page."""

    def recognize_many(self, pages):
        with self._lock:
            self.calls.append([page.name for page in pages])
        if any(page.name.startswith("bad") for page in pages):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return [FakeOcr.recognize(self, page) for page in pages]


def scans(tmp_path: Path, bad: int = 1, good: int = 3) -> list[InputImage]:
    folder = tmp_path / "scans"
    folder.mkdir(exist_ok=True)
    found = []
    for n, source in enumerate(SAMPLE_IMAGES[:good]):
        found.append(_copy(folder, source.read_bytes(), f"good{n}.jpg"))
    for n in range(bad):
        found.append(_copy(folder, SAMPLE_IMAGES[n].read_bytes(), f"bad{n}.jpg"))
    return found


def _copy(folder: Path, data: bytes, name: str) -> InputImage:
    (folder / name).write_bytes(data)
    return InputImage(image_id(name), str(folder / name), name)


def run(stage: str, engine, images, tmp_path: Path, cache=None) -> list[dict]:
    results = Results(str(tmp_path / "results"))
    runner = make_stage(stage, engine, cache or NoCache(), results, LIMITS)
    return run_shard(runner, images)


def statuses(entries) -> dict[str, str]:
    return {e["path"]: e["status"] for e in entries}


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (RuntimeError("engine bug"), "RuntimeError"),  # a crash on one odd image
        (UnreadableImage("not a page"), "UnreadableImage"),  # a declared per-image error
        (MemoryError("cannot allocate"), "MemoryError"),
    ],
)
def test_an_engine_failing_one_image_costs_that_image_only(tmp_path, failure, kind):
    images = scans(tmp_path)
    entries = run("ocr", FakeOcr(failure), images, tmp_path)
    assert statuses(entries) == {
        "good0.jpg": "ok",
        "good1.jpg": "ok",
        "good2.jpg": "ok",
        "bad0.jpg": "error",
    }
    bad = next(e for e in entries if e["status"] == "error")
    assert bad["error"]["class"] == kind and bad["error"]["stage"] == "ocr"
    record = Results(str(tmp_path / "results")).read_record("ocr", bad["id"])
    assert record["status"] == "error" and record["image"]["sha256"] == bad["sha256"]


def test_a_fatal_error_stops_the_job(tmp_path):
    with pytest.raises(ModelLoadError):
        run("ocr", FakeOcr(ModelLoadError("no model")), scans(tmp_path), tmp_path)


def test_a_fatal_error_stops_concurrent_work_too(tmp_path):
    engine = FakeOcr(ModelLoadError("no model"), workers=4)
    with pytest.raises(ModelLoadError):
        run("ocr", engine, scans(tmp_path, bad=2, good=3), tmp_path)


def test_a_failed_batch_is_retried_image_by_image(tmp_path):
    images = scans(tmp_path, bad=1, good=3)
    engine = BatchOnlyOcr(batch_size=4)
    entries = run("ocr", engine, images, tmp_path)
    assert statuses(entries)["bad0.jpg"] == "error"
    assert [s for p, s in statuses(entries).items() if p != "bad0.jpg"] == ["ok"] * 3
    assert engine.calls[0] == ["good0.jpg", "good1.jpg", "good2.jpg", "bad0.jpg"]
    assert sorted(map(tuple, engine.calls[1:])) == [
        ("bad0.jpg",),
        ("good0.jpg",),
        ("good1.jpg",),
        ("good2.jpg",),
    ]


def test_an_unreadable_file_is_an_error_record_before_the_engine_sees_it(tmp_path):
    images = scans(tmp_path, bad=0, good=2)
    missing = InputImage(image_id("gone.jpg"), str(tmp_path / "gone.jpg"), "gone.jpg")
    engine = FakeOcr()
    entries = run("ocr", engine, [*images, missing], tmp_path)
    assert statuses(entries)["gone.jpg"] == "error"
    assert entries[-1]["error"]["class"] == "UnreadableImage"
    assert "gone.jpg" not in [name for call in engine.calls for name in call]


def test_cached_results_are_not_computed_again(tmp_path):
    images = scans(tmp_path, bad=0, good=3)
    cache = LmdbCache(tmp_path / "cache")
    first = run("ocr", FakeOcr(), images, tmp_path, cache)
    engine = FakeOcr()
    second = run("ocr", engine, images, tmp_path, cache)
    assert engine.calls == []
    assert all(e["cached"] for e in second) and not any(e["cached"] for e in first)


class EchoExtractor(Extractor):
    """Reads the image, not the OCR (like a service): answers the total it was told."""

    reads_ocr = False

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls()

    def identity(self) -> dict[str, Any]:
        return {"name": "echo"}

    def extract(self, document: Document) -> Extraction:
        return Extraction({"total": {"type": "amount", "value": "9.00", "normalized": "9.00"}})


def test_kie_passes_ocr_failures_on_and_locates_service_values_in_the_ocr(tmp_path):
    images = scans(tmp_path, bad=1, good=2)
    run("ocr", FakeOcr(UnreadableImage("not a page")), images, tmp_path)
    entries = run("kie", EchoExtractor(), images, tmp_path)
    assert statuses(entries) == {"good0.jpg": "ok", "good1.jpg": "ok", "bad0.jpg": "error"}
    failed = next(e for e in entries if e["status"] == "error")
    assert failed["error"] == {"class": "UnreadableImage", "message": "not a page", "stage": "ocr"}
    record = Results(str(tmp_path / "results")).read_record("kie", entries[0]["id"])
    total = record["fields"]["total"]
    assert total["source"]["words"] == [
        {"text": "9.00", "polygon": [[10.0, 10.0], [200.0, 10.0], [200.0, 40.0], [10.0, 40.0]]}
    ]
    assert total["confidence"] == 0.98


# -- the registry ------------------------------------------------------------------------------


def test_an_engine_of_ones_own_is_named_module_and_class():
    from ocrkie.engines import registry

    backend = f"{__name__}:FakeOcr"  # no registry entry, no sys.modules patching
    config = {"ocr_backend": backend, "kie_backend": "rules", "document_parse": {"enabled": False}}
    registry.check_backends(config)
    engine = registry.build("ocr", config)
    assert isinstance(engine, FakeOcr) and engine.identity()["name"] == "fake-ocr"


def test_an_unknown_backend_is_refused_by_name():
    from ocrkie.engines import registry

    config = {"ocr_backend": "tesseract", "kie_backend": "rules"}
    choices = "easyocr, faster_paddle, kraken, rapidocr, trocr, upstage"
    with pytest.raises(ValueError, match=f"ocr_backend: 'tesseract' is not one of {choices}"):
        registry.check_backends(config)
    config["kie_backend"] = f"{__name__}:FakeOcr"  # an engine, of the wrong stage
    config["ocr_backend"] = "local"  # the older name of rapidocr
    with pytest.raises(ValueError, match="is not an engine of the kie stage"):
        registry.check_backends(config)


# -- engines run in a child process the job can stop ------------------------------------------


class SleepyOcr(FakeOcr):
    """Hangs for ever on pages named ``hang*``, as native code sometimes does."""

    def recognize(self, page: PageImage) -> Recognition:
        if page.name.startswith("hang"):
            time.sleep(3600)
        return super().recognize(page)


class HungryOcr(FakeOcr):
    """Keeps 60 MB more of memory after every page: a leak."""

    kept: ClassVar[list[bytearray]] = []

    def recognize(self, page: PageImage) -> Recognition:
        self.kept.append(bytearray(60 * 2**20))
        return super().recognize(page)


def test_a_page_that_hangs_becomes_its_error_record_and_the_shard_goes_on(tmp_path):
    images = scans(tmp_path, bad=0, good=2)
    hanging = _copy(tmp_path / "scans", SAMPLE_IMAGES[2].read_bytes(), "hang.jpg")
    engine = InWorker(partial(SleepyOcr.from_config, {}, 1), timeout_s=3, max_rss_mb=0)
    started = time.monotonic()
    try:
        entries = run("ocr", engine, [images[0], hanging, images[1]], tmp_path)
    finally:
        engine.close()
    assert statuses(entries) == {"good0.jpg": "ok", "hang.jpg": "error", "good1.jpg": "ok"}
    assert entries[1]["error"]["class"] == "PageTimeout"
    assert "within 3 s" in entries[1]["error"]["message"]
    assert engine.stats.timeouts == 1 and engine.stats.started == 2  # a fresh one after
    assert time.monotonic() - started < 60


def test_a_process_that_grows_past_the_limit_is_replaced_between_pages(tmp_path):
    images = scans(tmp_path, bad=0, good=3)
    engine = InWorker(partial(HungryOcr.from_config, {}, 1), timeout_s=60, max_rss_mb=150)
    try:
        entries = run("ocr", engine, images, tmp_path)
    finally:
        engine.close()
    assert [e["status"] for e in entries] == ["ok"] * 3  # no page lost
    assert engine.stats.memory_restarts >= 1 and engine.stats.started >= 2
    assert max(engine.stats.rss_mb) < 400


def test_an_engine_error_in_the_child_is_the_pages_error_record(tmp_path):
    engine = InWorker(partial(BrokenOcr.from_config, {}, 1), timeout_s=60, max_rss_mb=0)
    try:
        entries = run("ocr", engine, scans(tmp_path, bad=1, good=1), tmp_path)
    finally:
        engine.close()
    assert statuses(entries) == {"good0.jpg": "ok", "bad0.jpg": "error"}
    assert entries[1]["error"] == {
        "class": "UnreadableImage",
        "message": "not a page",
        "stage": "ocr",
    }


class BrokenOcr(FakeOcr):
    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(UnreadableImage("not a page"))


# -- the cache is best effort ------------------------------------------------------------------


class PaidOcr(FakeOcr):
    """An engine whose every answer costs money and is large (a service's raw answer)."""

    def recognize(self, page: PageImage) -> Recognition:
        result = super().recognize(page)
        noise = random.Random(page.name).randbytes(3000).hex()
        return Recognition(result.lines, {"answer": noise}, {"endpoint": "ocr", "billed_pages": 1})


def test_a_cache_that_cannot_keep_a_result_costs_a_warning_not_the_result(tmp_path, caplog):
    images = scans(tmp_path, bad=0, good=4)
    cache = BestEffort(LmdbCache(tmp_path / "cache", map_size=32768))  # room for one or two
    engine = PaidOcr()
    entries = run("ocr", engine, images, tmp_path, cache)
    assert [e["status"] for e in entries] == ["ok"] * 4  # every paid result kept
    assert len(engine.calls) == 4  # each page paid once: no batch recomputed page by page
    assert all(e["billing"]["billed_pages"] == 1 for e in entries)
    assert cache.failed_writes >= 2
    assert "a result could not be kept (MapFullError" in caplog.text


def test_a_corrupt_cache_entry_is_a_miss_and_is_replaced(tmp_path):
    images = scans(tmp_path, bad=0, good=3)
    run("ocr", FakeOcr(), images, tmp_path, BestEffort(LmdbCache(tmp_path / "cache")))
    env = lmdb.open(str(tmp_path / "cache"))
    with env.begin(write=True) as txn:
        for key, _ in list(txn.cursor()):
            txn.put(key, b"not zlib at all")  # a torn write, a disk error
    env.close()

    for calls in (3, 0):  # recomputed once, then served from the replaced entries
        engine = FakeOcr()
        cache = BestEffort(LmdbCache(tmp_path / "cache"))
        entries = run("ocr", engine, images, tmp_path, cache)
        assert [e["status"] for e in entries] == ["ok"] * 3
        assert len(engine.calls) == calls
        assert cache.unreadable == calls
        cache.close()


# -- decoding is guarded like the engine -------------------------------------------------------


class TrappedDecoder(PageDecoder):
    """Decodes as usual, except a file that ends in HANG (hangs) or GREEDY (takes 4 GB): what
    a crafted file does to a real decoder."""

    def page(self, data, sha, number, limits):
        held = self._hold(data, sha)
        if held.endswith(b"HANG"):
            time.sleep(3600)
        if held.endswith(b"GREEDY"):
            self.kept = bytearray(4 * 2**30)
        return super().page(data, sha, number, limits)


def test_a_file_that_hangs_or_exhausts_the_decoder_costs_its_page_only(tmp_path):
    images = scans(tmp_path, bad=0, good=2)
    data = SAMPLE_IMAGES[0].read_bytes()
    hanging = _copy(tmp_path / "scans", data + b"HANG", "hang.jpg")
    greedy = _copy(tmp_path / "scans", data + b"GREEDY", "greedy.jpg")
    decoder = GuardedDecoder(timeout_s=10, max_rss_mb=300, decoder=TrappedDecoder)
    results = Results(str(tmp_path / "results"))
    runner = make_stage("ocr", FakeOcr(), NoCache(), results, LIMITS, decoder)
    started = time.monotonic()
    try:
        entries = run_shard(runner, [images[0], hanging, greedy, images[1]])
    finally:
        decoder.close()
    assert statuses(entries) == {
        "good0.jpg": "ok",
        "hang.jpg": "error",
        "greedy.jpg": "error",
        "good1.jpg": "ok",
    }
    assert entries[1]["error"]["class"] == "PageTimeout"
    assert entries[2]["error"]["class"] == "MemoryError"  # the child's address space is capped
    assert time.monotonic() - started < 90


def test_every_frame_and_the_page_count_are_limited_where_the_shard_reads_them(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    small, huge = Image.new("1", (300, 300), 1), Image.new("1", (12000, 12000), 1)
    bomb = io.BytesIO()
    small.save(bomb, "TIFF", save_all=True, append_images=[huge], compression="group4")
    blank, many = Image.new("L", (100, 100), 255), io.BytesIO()
    blank.save(many, "PDF", save_all=True, append_images=[blank] * 5, resolution=72)
    images = [_copy(folder, bomb.getvalue(), "bomb.tif"), _copy(folder, many.getvalue(), "six.pdf")]
    engine = FakeOcr()
    results = Results(str(tmp_path / "results"))
    limits = ImageLimits(max_pixels=10**8, max_side=4096, max_pages=5)
    entries = run_shard(make_stage("ocr", engine, NoCache(), results, limits), images)
    assert [(e["path"], e.get("page"), e["status"]) for e in entries] == [
        ("bomb.tif", 1, "ok"),
        ("bomb.tif", 2, "error"),
        ("six.pdf", None, "error"),
    ]
    assert entries[1]["error"]["class"] == "DecompressionBomb"
    assert entries[2]["error"]["class"] == "TooManyPages"
    assert [name for call in engine.calls for name in call] == ["bomb.tif"]


# -- page records follow the file --------------------------------------------------------------


def pages_of(folder: Path, stem: str) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{stem}*.json"))


def test_a_file_replaced_by_one_of_other_length_leaves_no_stale_page_record(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    receipts = [Image.open(p).convert("RGB") for p in SAMPLE_IMAGES[:3]]
    layouts = {
        "one page": receipts[:1],
        "three pages": receipts,
        "two pages": receipts[:2],
        "one page again": receipts[2:],
    }
    results = Results(str(tmp_path / "results"))
    for pages in layouts.values():
        tiff = io.BytesIO()
        pages[0].save(tiff, "TIFF", save_all=True, append_images=pages[1:])
        image = _copy(folder, tiff.getvalue(), "scan.tif")
        run("ocr", FakeOcr(), [image], tmp_path)
        read = results.read_pages("ocr", image.id)
        assert [r["image"]["pages"] for r in read] == [len(pages)] * len(pages)
        assert len(pages_of(tmp_path / "results" / "ocr", image.id)) == len(pages)
    assert pages_of(tmp_path / "results" / "ocr", image.id) == [f"{image.id}.json"]


# -- a service that is down --------------------------------------------------------------------


OUTAGE = TransientError("Upstage ocr: HTTP 503 after 6 attempts: Service unavailable")


def test_a_transient_failure_is_recorded_to_be_tried_again(tmp_path):
    entries = run("ocr", FakeOcr(OUTAGE), scans(tmp_path, bad=1, good=2), tmp_path)
    failed = next(e for e in entries if e["status"] == "error")
    assert failed["error"] == {**error_info(OUTAGE), "stage": "ocr", "retry": True}
    assert [e["status"] for e in entries if e is not failed] == ["ok", "ok"]


def test_a_service_down_stops_the_stage_and_every_other_job_before_it_sends(tmp_path):
    images = scans(tmp_path, bad=6, good=0)
    results = Results(str(tmp_path / "results"))
    engine = FakeOcr(OUTAGE)
    runner = make_stage(
        "ocr", engine, NoCache(), results, LIMITS, breaker=Breaker("ocr", results, 3)
    )
    with pytest.raises(ServiceUnavailable, match=r"unavailable since 20\d\d-.*3 requests in a"):
        run_shard(runner, images)
    assert len(engine.calls) == 3
    assert len(list((tmp_path / "results" / "ocr").glob("*.json"))) == 2  # the rest untouched
    assert outages(results) and "HTTP 503" in outages(results)[0]

    other = FakeOcr()  # another job of the same run, its service just as down
    runner = make_stage(
        "ocr", other, NoCache(), results, LIMITS, breaker=Breaker("ocr", results, 3)
    )
    with pytest.raises(ServiceUnavailable):
        run_shard(runner, scans(tmp_path, bad=0, good=2))
    assert other.calls == []

    clear_outages(results)  # the next run tries again
    runner = make_stage(
        "ocr", other, NoCache(), results, LIMITS, breaker=Breaker("ocr", results, 3)
    )
    assert [e["status"] for e in run_shard(runner, images)] == ["ok"] * 6


def test_the_jobs_of_a_run_count_failures_in_a_row_together(tmp_path):
    results = Results(str(tmp_path / "results"))
    jobs = [Breaker("ocr", results, 3), Breaker("ocr", results, 3)]
    jobs[0].failed(OUTAGE)
    jobs[1].failed(OUTAGE)
    jobs[0].succeeded()  # an answer anywhere: the service is up
    jobs[1].failed(OUTAGE)
    jobs[0].failed(OUTAGE)
    with pytest.raises(ServiceUnavailable):
        jobs[1].failed(OUTAGE)
