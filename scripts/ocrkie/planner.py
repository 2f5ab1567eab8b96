"""What the submitting Snakemake does once per run, when it parses the workflow: find the
images, form the shards, and work out which manifests each stage must (re)make and why.
Shard jobs never come here: they read the plan file, which only a run that executes jobs
writes (``write_plan``), one run at a time: a dry run, a report or a DAG writes nothing.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import os
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import IO, Any

from .cache import open_existing_cache
from .engines import Engine, Extractor
from .engines.guardrails import cpu_warning
from .engines.registry import active_stages, build
from .errors import PlanInUse
from .exports import identity as export_identity
from .exports import languages as export_languages
from .exports import requested
from .images import ImageLimits
from .inputs import discover
from .outcome import money
from .plan import (
    PLAN_FILE,
    Outlook,
    Shard,
    StagePlan,
    decode_plan,
    encode_plan,
    form_shards,
    grown_shard_size,
    manifest_names,
    survey,
)
from .progress import duration
from .results import Results, manifest_path
from .stages import Work, make_stage, record_identity
from .worker import GuardedDecoder

LABELS = {"ocr": "OCR", "kie": "KIE", "layout": "Layout"}
READ_IMAGES = ("ocr", "layout")  # the others read the OCR records: their names carry OCR's


@dataclass
class RunPlan:
    images: int
    shards: list[Shard]
    stages: dict[str, StagePlan]
    outlooks: dict[str, Outlook]
    source: str
    skipped: dict[str, int]  # reason -> entries of the input left out
    skipped_entries: list[tuple[str, str]]  # (path, reason), as the plan file lists them
    previous_bytes: bytes | None  # the plan file it was made from (None: there was none)
    written: bool = False  # by this process (write_plan)
    measured: dict[str, float] = field(default_factory=dict)  # stage -> seconds an image a job
    shard_size: int = 0  # of new shards: shard_size, or larger for a large batch
    grown: bool = False  # larger than the shard_size setting (max_shards)

    def lines(
        self, engines: dict[str, Engine], plan_location: str, slots: int, remote: bool
    ) -> list[str]:
        """The plan as the dry run and the run print it, first thing. ``remote``: jobs run
        on machines of their own, so this machine's device is beside the point."""
        largest = max((len(s.images) for s in self.shards), default=0)
        lines = [
            f"ocrkie: {self.images} images from {self.source} in {len(self.shards)} shards "
            f"(largest {largest} images; {slots} job slots); plan: {plan_location}"
        ]
        if self.grown:
            lines.append(
                f"new shards of up to {self.shard_size} images (more than shard_size, so that "
                "the batch makes at most max_shards shards)"
            )
        if self.skipped:
            counts = "; ".join(f"{n} {reason}" for reason, n in self.skipped.items())
            lines.append(f"skipped: {counts} (listed in the plan and in skipped.csv)")
        for step, outlook in self.outlooks.items():
            engine = engines.get(step)
            if engine is None:
                lines.append(outlook.line(f"{step.upper()} export"))
                continue
            name = engine.identity()["name"]
            device = "remote jobs" if remote and engine.device == "cpu" else engine.device
            if device == "cpu" and engine.cpu_because:  # said once, here
                device += f": {engine.cpu_because}"
            lines.append(outlook.line(f"{LABELS[step]} ({name} on {device})"))
            pages = sum(len(shard.images) for shard in outlook.to_make)
            lines += self.estimate(step, engine, pages, slots)
            warning = cpu_warning(name, engine.guardrails, engine.device, pages, slots)
            lines += [warning] if warning and not remote else []
        return lines

    @cached_property
    def plan_bytes(self) -> bytes:
        """The plan file this run needs (made when first asked for: a dry run never does)."""
        return encode_plan(self.shards, self.source, self.skipped_entries)

    def jobs(self) -> int:
        """The shard jobs this run makes (the few jobs over the whole batch aside)."""
        return sum(len(outlook.to_make) for outlook in self.outlooks.values())

    def job_list(self, results_dir: str) -> list[str]:
        """One line per shard job to run, in stage order: what a dry run too large to list
        its jobs one by one writes to a file instead."""
        lines = []
        for step, outlook in self.outlooks.items():
            label = LABELS.get(step, f"{step.upper()} export")
            for shard in outlook.to_make:
                output = manifest_path(results_dir, step, self.stages[step].manifests[shard.name])
                count = f"{len(shard.images)} image{'s' * (len(shard.images) != 1)}"
                lines.append(f"{label} of {shard.name} ({count}): {output}")
        return lines

    def estimate(self, step: str, engine: Engine, images: int, slots: int) -> list[str]:
        """About how long the stage's jobs take: from this results folder's timings of the
        same engine and settings where it has some, else from the engine's typical speed."""
        if not images:
            return []
        jobs = min(slots, len(self.outlooks[step].to_make))
        if step in self.measured:  # (an engine's images in flight at once wait together)
            per_image = self.measured[step]
            seconds = images * per_image / (max(1, jobs) * max(1, engine.concurrency))
            if engine.paid and (bound := engine.estimate(images, jobs)):
                seconds = max(seconds, bound[0])  # the rate limit
            basis = f"{per_image:.3g} s an image, measured in this results folder"
        elif found := engine.estimate(images, jobs):
            seconds, basis = found
        else:
            return [f"  time: no estimate for {engine.identity()['name']} yet"]
        took = f"about {duration(seconds)}" if seconds >= 1 else "under a second"
        counts = f"{images} image{'s' * (images != 1)}, {jobs} job{'s' * (jobs != 1)} at once"
        return [f"  time: {took} for {counts} ({basis})"]


def measured_seconds(
    results: Results, stage_plan: StagePlan, outlook: Outlook, most: int = 10
) -> float | None:
    """Seconds an image took a job, over the images computed (not from the cache) in up to
    ``most`` of the stage's up-to-date manifests (the same engine and settings)."""
    running = {shard.name for shard in outlook.to_make}
    names = [n for s, n in stage_plan.manifests.items() if s not in running][:most]
    seconds: dict[str, float] = {}
    for name in names:
        try:
            entries = results.read_manifest(stage_plan.stage, name)["entries"]
        except (FileNotFoundError, ValueError, KeyError):
            continue
        for entry in entries:
            if not entry.get("cached") and entry.get("status") == "ok":
                seconds[entry["id"]] = seconds.get(entry["id"], 0.0) + entry["seconds"]
    return sum(seconds.values()) / len(seconds) if seconds else None


def prepare_run(
    config: dict[str, Any],
    results: Results,
    engines: dict[str, Engine],
    slots: int,
    storage_prefix: str | None = None,
) -> RunPlan:
    """The plan of this run. Its objects (several per image) live as long as the run: the
    garbage collector, which would walk them again and again while they are made and later
    while Snakemake builds its DAG, leaves them alone."""
    gc.disable()
    try:
        return _prepare_run(config, results, engines, slots, storage_prefix)
    finally:
        gc.enable()
        gc.freeze()


def _prepare_run(
    config: dict[str, Any],
    results: Results,
    engines: dict[str, Engine],
    slots: int,
    storage_prefix: str | None,
) -> RunPlan:
    found = discover(config, storage_prefix)
    images = found.images
    try:
        previous_bytes: bytes | None = results.folder.read_bytes(PLAN_FILE)
    except FileNotFoundError:
        previous_bytes = None
    stages = active_stages(config)
    present = {stage: results.manifest_names(stage) for stage in stages}
    started = {name.split("-", 1)[0] for names in present.values() for name in names}
    shards = form_shards(  # (the previous plan's images go once its shards are kept)
        images,
        decode_plan(previous_bytes) if previous_bytes else [],
        started,
        config["shard_size"],
        slots,
        config["max_shards"],
    )

    limits = ImageLimits.from_config(config)
    steps = {stage: record_identity(stage, engines[stage], limits) for stage in stages}
    formats = requested(config["exports"])
    engine_language = engines["ocr"].language if "ocr" in engines else ""
    spoken = export_languages(config["language"], engine_language)
    steps |= {name: export_identity(name, spoken) for name in formats}
    plans: dict[str, StagePlan] = {}
    outlooks: dict[str, Outlook] = {}
    for step, identity in steps.items():
        upstream = None if step in READ_IMAGES else plans["ocr"]
        present.setdefault(step, results.manifest_names(step))
        records = results.record_ids(step) if step in stages and present[step] else None
        retry = results.retry_names(step) if step in stages and present[step] else set()
        plans[step] = manifest_names(step, identity, shards, upstream)
        outlooks[step] = survey(results, plans[step], shards, present[step], records, retry)
        if outlooks[step].repair:  # supersede manifests whose records were deleted
            for shard in outlooks[step].repair:
                shard.generation[step] = shard.generation.get(step, 0) + 1
            plans[step] = manifest_names(step, identity, shards, upstream)

    source = config["input_list"] or config["input_dir"]
    skips = found.skip_counts()
    run = RunPlan(
        len(images), shards, plans, outlooks, source, skips, found.skipped, previous_bytes
    )
    run.shard_size = grown_shard_size(len(images), config["shard_size"], config["max_shards"])
    run.grown = run.shard_size > config["shard_size"]
    for stage in stages:
        if outlooks[stage].to_make and outlooks[stage].up_to_date:
            measured = measured_seconds(results, plans[stage], outlooks[stage])
            run.measured |= {stage: measured} if measured else {}
    return run


LOCK_FILE = "plan/plan.lock"
_HELD: dict[Path, IO[str]] = {}  # the locks this process holds: open until it ends


def write_plan(run: RunPlan, results: Results) -> None:
    """Write the plan for a run that executes jobs, before any job reads it; hold the
    results folder's plan lock until this process ends, so that no other run rewrites the
    plan under this one's pending jobs. Refused (``PlanInUse``) while another run holds the
    lock, or when the plan file changed since this run read it (a run that ended meanwhile)."""
    if run.written:
        return
    _hold(lock_path(results), results.location)
    try:
        current: bytes | None = results.folder.read_bytes(PLAN_FILE)
    except FileNotFoundError:
        current = None
    if current not in (run.previous_bytes, run.plan_bytes):
        raise PlanInUse(
            f"the plan in {results.location} changed since this run read it (another run "
            "ended meanwhile): start this one again"
        )
    if current != run.plan_bytes:
        results.folder.write_bytes(PLAN_FILE, run.plan_bytes)
    run.written = True


def lock_path(results: Results) -> Path:
    """In the results folder; for S3 results, in the working directory the runs start from."""
    if results.location.startswith("s3://"):
        name = hashlib.sha256(results.location.encode()).hexdigest()[:16]
        return Path(".snakemake", "ocrkie", f"plan-{name}.lock")
    return results.local_path(LOCK_FILE)


def _hold(path: Path, location: str) -> None:
    """An exclusive lock on ``path`` until this process ends (the system releases it then,
    also after kill -9: no stale lock to remove)."""
    if path in _HELD:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held open on purpose)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "a run"
        handle.close()
        raise PlanInUse(
            f"another run ({holder}) is using the plan in {location}: wait for it to end"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    _HELD[path] = handle


def build_engines(config: dict[str, Any], threads: dict[str, int]) -> dict[str, Engine]:
    return {stage: build(stage, config, threads.get(stage, 1)) for stage in active_stages(config)}


ENDPOINTS = {
    "ocr": "POST /v1/document-digitization (model ocr)",
    "kie": "POST /v1/information-extraction",
    "layout": "POST /v1/document-digitization (model document-parse)",
}


def api_forecast(
    run: RunPlan, config: dict[str, Any], engines: dict[str, Engine], results: Results, cache: str
) -> list[str]:
    """For each stage that pays per page: the requests and pages it will send, the pages the
    cache holds (free), and the images that already have results. Reads the images of the
    shards to run (to hash and count them, in a child process as jobs do): meant for dry
    runs."""
    paid = {stage: engine for stage, engine in engines.items() if engine.paid}
    if not paid:
        return []  # (and the cache stays closed: a dry run touches nothing)
    lines = []
    store = open_existing_cache(cache, config.get("cache_format", "lmdb"))
    decoder = GuardedDecoder(config["worker"]["timeout_s"], 0)
    limits = ImageLimits.from_config(config)
    try:
        for stage, engine in paid.items():
            runner = make_stage(stage, engine, store, results, limits, decoder)
            outlook = run.outlooks[stage]
            todo = [image for shard in outlook.to_make for image in shard.images]
            forecasts = [runner.forecast(Work(image)) for image in todo]
            columns = zip((0, 0, 0), *forecasts, strict=True)
            pages, requests, cached = (sum(column) for column in columns)
            if isinstance(engine, Extractor) and engine.paid_reader() is not None:
                lines += cascade_forecast(engine, config, pages, requests, cached, len(todo))
                continue
            lines.append(
                f"Upstage {stage}: {requests} requests ({pages} pages) will be sent to "
                f"{ENDPOINTS[stage]}; {cached} pages are in the cache (free), "
                f"{outlook.up_to_date} images already have results"
            )
    finally:
        decoder.close()
    return lines


def cascade_forecast(
    engine: Extractor, config: dict[str, Any], pages: int, requests: int, cached: int, todo: int
) -> list[str]:
    """What a cascade will send: which documents, only the local model's reading tells; at
    most all of them; about the share its model card measured at its threshold, if any."""
    price = config["upstage"]["price_per_page"].get("information-extract", 0.0)
    cost = f", {money(pages * price)} at {money(price)} a page" if price else ""
    lines = [
        f"Upstage kie (cascade): the documents it sends to {ENDPOINTS['kie']} are known only "
        f"once the local model has read them; at most all {requests} requests ({pages} pages"
        f"{cost}); {cached} pages are in the cache (free)"
    ]
    expected = engine.expected_share()
    if expected is not None and todo:
        share, measured = expected
        lines.append(
            f"  expected: about {share * todo:.0f} of the {todo} documents ({share:.0%}, "
            f"{measured})"
        )
    return lines
