"""The shard job every stage rule runs: read the shard from the plan, build the stage's engine,
write one record per image, then the shard's manifest (the file Snakemake tracks)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .cache import open_cache
from .engines.registry import build
from .exports import exporter
from .exports.model import Page
from .formats import error_info, now_iso, write_json_atomic
from .inputs import InputImage
from .plan import manifest_header, read_shard
from .planner import export_identity, image_limits
from .results import Results
from .stages import make_stage, record_identity, run_shard

MANIFEST_FORMAT = "ocrkie.shard/1"
log = logging.getLogger(__name__)


def _setup_logging(log_file: str | None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers
    )


def run_stage_job(smk: Any) -> None:
    """Entry point of ``scripts/run_stage.py``; the stage is the rule's name."""
    _setup_logging(smk.log[0] if smk.log else None)
    run_stage(
        stage_name=smk.rule,
        config=smk.config,
        plan_file=smk.input.plan,
        shard_name=smk.wildcards.shard,
        manifest=smk.output[0],
        results_location=smk.params.results,
        cache_location=smk.params.cache,
        threads=smk.threads,
    )


def run_stage(
    stage_name: str,
    config: dict[str, Any],
    plan_file: str,
    shard_name: str,
    manifest: str,
    results_location: str,
    cache_location: str,
    threads: int = 1,
) -> dict[str, Any]:
    started = now_iso()
    shard = read_shard(plan_file, shard_name)
    results = Results(results_location)
    withdraw_previous_manifests(results, stage_name, shard_name, Path(manifest).stem)
    engine = build(stage_name, config, threads)
    limits = image_limits(config)
    stage = make_stage(stage_name, engine, open_cache(cache_location), results, limits)
    try:
        entries = run_shard(stage, shard.images)
    finally:
        usage = engine.usage()
        engine.close()
        if usage:
            log.info("API usage of this job: %s", usage)
    document = {
        "format": MANIFEST_FORMAT,
        **manifest_header(stage_name, record_identity(stage_name, engine, limits), shard),
        "device": engine.device,
        "started_at": started,
        "finished_at": now_iso(),
        "usage": usage,
        "entries": entries,
    }
    write_json_atomic(manifest, document)
    return document


def run_export_job(smk: Any) -> None:
    """Entry point of ``scripts/run_export.py``: one format, one shard."""
    _setup_logging(smk.log[0] if smk.log else None)
    run_export(
        name=smk.wildcards.format,
        plan_file=smk.input.plan,
        shard_name=smk.wildcards.shard,
        manifest=smk.output[0],
        results_location=smk.params.results,
    )


def run_export(
    name: str, plan_file: str, shard_name: str, manifest: str, results_location: str
) -> dict[str, Any]:
    """Render the shard's OCR records in one format. An image whose OCR failed has no file
    (its entry says why); a record that cannot be rendered is an error entry, not a failed job."""
    started = now_iso()
    shard = read_shard(plan_file, shard_name)
    results = Results(results_location)
    withdraw_previous_manifests(results, name, shard_name, Path(manifest).stem)
    entries = [_export_one(results, name, image) for image in shard.images]
    document = {
        "format": MANIFEST_FORMAT,
        **manifest_header(name, export_identity(name), shard),
        "started_at": started,
        "finished_at": now_iso(),
        "entries": entries,
    }
    write_json_atomic(manifest, document)
    return document


def _export_one(results: Results, name: str, image: InputImage) -> dict[str, Any]:
    entry = {"id": image.id, "path": image.relpath}
    module = exporter(name)
    try:
        record = results.read_record("ocr", image.id)
        if record["status"] != "ok":
            return {**entry, "status": "skipped", "reason": f"no OCR: {record['error']['class']}"}
        data = module.render(Page.from_record(record))
        results.folder.write_bytes(f"{module.FOLDER}/{image.id}{module.SUFFIX}", data)
        return {**entry, "status": "ok"}
    except Exception as exc:
        log.exception("%s export failed on %s", name, image.relpath)
        return {**entry, "status": "error", "error": {**error_info(exc), "stage": name}}


def withdraw_previous_manifests(results: Results, stage: str, shard: str, current: str) -> None:
    """Delete the shard's other manifests of this stage before its records are overwritten:
    a manifest claims records made a certain way, and would otherwise outlive them."""
    for name in results.manifest_names(stage):
        if name.split("-", 1)[0] == shard and name != current:
            results.withdraw_manifest(stage, name)
