"""The shard job every stage rule runs: read the shard from the plan, build the stage's engine,
write one record per image, then the shard's manifest (the file Snakemake tracks). The
export rule's job, likewise, per format."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from .breaker import Breaker
from .cache import open_cache
from .engines.registry import build
from .exports import exporter, languages
from .exports import identity as export_identity
from .exports.images import copy_name, reference, write_upright_copy
from .formats import error_info, now_iso, write_json_atomic
from .images import ImageLimits, PageDecoder
from .inputs import InputImage
from .page import Page
from .plan import manifest_header, read_shard
from .progress import ShardProgress
from .results import Results, record_name
from .stages import make_stage, record_identity, run_shard
from .usage import UsageLedger
from .worker import GuardedDecoder, InWorker

MANIFEST_FORMAT = "ocrkie.shard/1"
log = logging.getLogger(__name__)


def engine_for(stage: str, config: dict[str, Any], threads: int, mem_mb: float) -> Any:
    """The stage's engine; one that may hang or grow runs in a child process the job can
    stop (``worker.timeout_s`` per page) and replace (past ``worker.max_rss_mb``, by default
    80% of the job's memory)."""
    engine = build(stage, config, threads)
    worker = config["worker"]
    if not engine.in_worker or not worker["timeout_s"]:
        return engine
    make = partial(build, stage, config, threads)
    return InWorker(make, worker["timeout_s"], max_rss(config, mem_mb))


def decoder_for(config: dict[str, Any], mem_mb: float) -> Any:
    """Where the job decodes files: a child process under the engine's own time and memory
    limits, so that a crafted file costs its pages, never the job (none without a limit)."""
    timeout_s = config["worker"]["timeout_s"]
    return GuardedDecoder(timeout_s, max_rss(config, mem_mb)) if timeout_s else PageDecoder()


def max_rss(config: dict[str, Any], mem_mb: float) -> float:
    return config["worker"]["max_rss_mb"] or 0.8 * mem_mb


def run_stage(
    stage_name: str,
    config: dict[str, Any],
    plan_file: str,
    shard_name: str,
    manifest: str,
    results_location: str,
    cache_location: str,
    threads: int = 1,
    mem_mb: float = 0,
) -> dict[str, Any]:
    started = now_iso()
    shard = read_shard(plan_file, shard_name)
    results = Results(results_location)
    name = Path(manifest).stem
    withdraw_previous_manifests(results, stage_name, shard_name, name)
    engine = engine_for(stage_name, config, threads, mem_mb)
    ledger = UsageLedger(results, stage_name, shard_name)
    engine.observe(ledger)
    limits = ImageLimits.from_config(config)
    decoder = decoder_for(config, mem_mb)
    # a service that keeps failing stops the stage (local engines have no outages)
    in_a_row = config["upstage"]["max_failures_in_a_row"] if engine.paid else 0
    breaker = Breaker(stage_name, results, in_a_row)
    engine.stop_retrying_when(breaker.tripped)
    cache = open_cache(cache_location, config.get("cache_format", "lmdb"))
    stage = make_stage(stage_name, engine, cache, results, limits, decoder, breaker)
    stage.progress = shard_progress(stage_name, shard_name, results, len(shard.images), config)
    try:
        entries = run_shard(stage, shard.images)
        stage.progress.finish()
    finally:
        usage = engine.usage()
        engine.close()
        decoder.close()
        if usage:
            log.info("API usage of this job: %s", usage)
    retry = sorted({e["id"] for e in entries if e.get("error", {}).get("retry")})
    if retry:
        log.warning(
            "%d images failed on a transient fault: the next run tries them again", len(retry)
        )
    document = {
        "format": MANIFEST_FORMAT,
        **manifest_header(stage_name, record_identity(stage_name, engine, limits), shard),
        "device": engine.device,
        "started_at": started,
        "finished_at": now_iso(),
        "usage": usage,
        **({"worker": engine.stats.as_dict()} if isinstance(engine, InWorker) else {}),
        **({"cache": cache_trouble} if (cache_trouble := _cache_trouble(cache)) else {}),
        "entries": entries,
    }
    results.mark_retry(stage_name, name, retry)  # before the manifest: a kill between reruns
    write_json_atomic(manifest, document)
    ledger.finish()
    return document


def shard_progress(
    stage: str, shard: str, results: Results, images: int, config: dict[str, Any]
) -> ShardProgress:
    """The job's progress lines and file, as often as ``progress`` says."""
    every = config.get("progress", {})
    return ShardProgress(
        stage,
        shard,
        results,
        images,
        every_images=every.get("every_images", 50),
        every_seconds=every.get("every_seconds", 30),
    )


def _cache_trouble(cache: Any) -> dict[str, int]:
    """Cache writes that failed and entries that could not be read, if any."""
    counts = {"failed_writes": cache.failed_writes, "unreadable_entries": cache.unreadable}
    return {k: v for k, v in counts.items() if v}


def export_languages(config: dict[str, Any]) -> tuple[str, ...]:
    """The text's languages as the exports declare them (``exports.languages``): the
    ``language`` setting, or the configured OCR engine's."""
    return languages(config["language"], build("ocr", config).language)


def run_export(
    name: str,
    plan_file: str,
    shard_name: str,
    manifest: str,
    results_location: str,
    limits: ImageLimits,
    languages: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Render the shard's OCR records in one format. An image whose OCR failed has no file
    (its entry says why); a record that cannot be rendered is an error entry, not a failed job.
    ``limits``: for reading the images a format names, where it needs an upright copy;
    ``languages``: the text's, for the formats that declare it (``exports.languages``)."""
    started = now_iso()
    shard = read_shard(plan_file, shard_name)
    results = Results(results_location)
    withdraw_previous_manifests(results, name, shard_name, Path(manifest).stem)
    entries = [
        entry
        for image in shard.images
        for entry in _export_pages(results, name, image, limits, languages)
    ]
    document = {
        "format": MANIFEST_FORMAT,
        **manifest_header(name, export_identity(name, languages), shard),
        "started_at": started,
        "finished_at": now_iso(),
        "entries": entries,
    }
    write_json_atomic(manifest, document)
    return document


def _export_pages(
    results: Results,
    name: str,
    image: InputImage,
    limits: ImageLimits,
    languages: tuple[str, ...],
) -> list[dict[str, Any]]:
    """One file per page read (``<id>.<suffix>``, or ``<id>-p0002.<suffix>`` ... for a document
    of several pages); an entry per page."""
    module = exporter(name)
    entry: dict[str, Any] = {"id": image.id, "path": image.relpath}
    try:
        pages = results.read_pages("ocr", image.id)
    except Exception as exc:
        log.exception("%s export cannot read the OCR of %s", name, image.relpath)
        return [{**entry, "status": "error", "error": {**error_info(exc), "stage": name}}]
    entries = []
    results.retire_other_pages(module.FOLDER, image.id, len(pages), module.SUFFIX)
    for record in pages:
        number, count = record["image"].get("page", 1), record["image"].get("pages", 1)
        page = {**entry, **({"page": number, "pages": count} if count > 1 else {})}
        if record["status"] != "ok":
            entries.append(
                {**page, "status": "skipped", "reason": f"no OCR: {record['error']['class']}"}
            )
            continue
        try:
            rendered = Page.from_record(record, made_at=now_iso())
            rendered.languages = languages
            if module.NAMES_IMAGE:
                rendered.image_ref = _named_image(results, module.FOLDER, image, rendered, limits)
            data = module.render(rendered)
            target = f"{module.FOLDER}/{record_name(image.id, number, count)}{module.SUFFIX}"
            results.folder.write_bytes(target, data)
            entries.append({**page, "status": "ok"})
        except Exception as exc:
            log.exception("%s export failed on %s", name, image.relpath)
            entries.append({**page, "status": "error", "error": {**error_info(exc), "stage": name}})
    return entries


def _named_image(
    results: Results, folder: str, image: InputImage, page: Page, limits: ImageLimits
) -> str:
    """The image an export in ``folder`` names: the file where it is stored upright, else an
    upright copy of the page, written now."""
    if page.stored_upright:
        return reference(results.location, folder, image.path)
    number, count = page.number, page.pages
    name = copy_name(record_name(image.id, number, count), image.path)
    size = (page.width, page.height)
    write_upright_copy(results.folder, name, image.path, number, size, limits, page.dpi)
    return reference(results.location, folder, f"{results.location}/{name}")


def withdraw_previous_manifests(results: Results, stage: str, shard: str, current: str) -> None:
    """Delete the shard's other manifests of this stage before its records are overwritten:
    a manifest claims records made a certain way, and would otherwise outlive them."""
    for name in results.manifest_names(stage):
        if name.split("-", 1)[0] == shard and name != current:
            results.withdraw_manifest(stage, name)
