"""Entry points for the rule scripts: unpack the ``snakemake`` object, build the backend the
config names, and run a stage over the job's shard."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .cache import open_cache
from .kie import RuleExtractor, load_field_schema
from .plan import cache_location
from .stages import (
    ImageLimits,
    Task,
    run_kie_shard,
    run_layout_shard,
    run_ocr_shard,
)

log = logging.getLogger(__name__)


def _setup_logging(smk: Any) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if smk.log:
        handlers.append(logging.FileHandler(smk.log[0], mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers
    )


def upstage_client(config: dict[str, Any]) -> Any:
    from .secrets import resolve_upstage_key
    from .upstage import UpstageClient

    settings = config["upstage"]
    return UpstageClient(
        resolve_upstage_key(os.environ),
        base_url=settings["base_url"],
        timeout=(10.0, float(settings["timeout_s"])),
        max_attempts=settings["max_attempts"],
        rate_limits=settings["rate_limits"],
    )


def make_ocr_engine(config: dict[str, Any], threads: int) -> Any:
    if config["ocr_backend"] == "upstage":
        from .engines.upstage import UpstageOcrEngine

        return UpstageOcrEngine(upstage_client(config), config["upstage"]["ocr_model"])
    from .engines.rapid import RapidOcrEngine

    local = config["local"]
    return RapidOcrEngine(threads=threads, use_gpu=local["use_gpu"], text_score=local["text_score"])


def make_extractor(config: dict[str, Any]) -> Any:
    schema = load_field_schema(config["kie_schema"])
    if config["kie_backend"] == "upstage":
        from .engines.upstage import UpstageExtractor

        return UpstageExtractor(upstage_client(config), schema, config["upstage"]["kie_model"])
    return RuleExtractor(schema)


def _workers(config: dict[str, Any], backend: str) -> int:
    return config["upstage"]["concurrency"] if backend == "upstage" else 1


def _limits(config: dict[str, Any]) -> ImageLimits:
    return ImageLimits(config["images"]["max_pixels"], config["images"]["max_side"])


def _image_tasks(smk: Any) -> list[Task]:
    return [
        Task(Path(out).stem, relpath, image, out)
        for image, out, relpath in zip(
            smk.input.images, smk.output, smk.params.relpaths, strict=True
        )
    ]


def _report_api_usage(engine: Any, smk: Any) -> None:
    """Requests sent (retries included) and 429s seen by this job, for the summary."""
    client = getattr(engine, "client", None)
    if client is None or not smk.log:
        return
    usage = {k: v for k, v in client.stats.items() if v["requests"]}
    Path(smk.log[0]).with_suffix(".api.json").write_text(json.dumps(usage) + "\n")
    log.info("API usage of this job: %s", usage)


def ocr_job(smk: Any) -> None:
    _setup_logging(smk)
    engine = make_ocr_engine(smk.config, smk.threads)
    cache = open_cache(cache_location(smk.config))
    try:
        workers = _workers(smk.config, smk.config["ocr_backend"])
        run_ocr_shard(_image_tasks(smk), engine, cache, _limits(smk.config), workers)
    finally:
        _report_api_usage(engine, smk)


def kie_job(smk: Any) -> None:
    _setup_logging(smk)
    # The API needs the images: then they are inputs, i.e. local files even on AWS Batch.
    images = smk.input.images or smk.params.images
    tasks = [
        Task(Path(out).stem, relpath, image, out, ocr=ocr)
        for image, ocr, out, relpath in zip(
            images, smk.input.ocr, smk.output, smk.params.relpaths, strict=True
        )
    ]
    extractor = make_extractor(smk.config)
    try:
        workers = _workers(smk.config, smk.config["kie_backend"])
        run_kie_shard(tasks, extractor, open_cache(cache_location(smk.config)), workers)
    finally:
        _report_api_usage(extractor, smk)


def layout_job(smk: Any) -> None:
    from .engines.upstage import UpstageLayoutParser

    _setup_logging(smk)
    options = {k: v for k, v in smk.config["document_parse"].items() if k != "enabled"}
    parser = UpstageLayoutParser(upstage_client(smk.config), options)
    try:
        run_layout_shard(
            _image_tasks(smk),
            parser,
            open_cache(cache_location(smk.config)),
            _limits(smk.config),
            smk.config["upstage"]["concurrency"],
        )
    finally:
        _report_api_usage(parser, smk)
