"""Entry points for the rule scripts: unpack the ``snakemake`` object and run a stage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .cache import open_cache
from .kie import RuleExtractor, load_field_schema
from .plan import cache_location
from .stages import ImageLimits, Task, run_kie_shard, run_ocr_shard


def _setup_logging(smk: Any) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if smk.log:
        handlers.append(logging.FileHandler(smk.log[0], mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers
    )


def make_ocr_engine(config: dict[str, Any], threads: int) -> Any:
    from .engines.rapid import RapidOcrEngine

    local = config["local"]
    return RapidOcrEngine(threads=threads, use_gpu=local["use_gpu"], text_score=local["text_score"])


def make_extractor(config: dict[str, Any]) -> Any:
    return RuleExtractor(load_field_schema(config["kie_schema"]))


def ocr_job(smk: Any) -> None:
    _setup_logging(smk)
    config = smk.config
    tasks = [
        Task(Path(out).stem, relpath, image, out)
        for image, out, relpath in zip(
            smk.input.images, smk.output, smk.params.relpaths, strict=True
        )
    ]
    limits = ImageLimits(config["images"]["max_pixels"], config["images"]["max_side"])
    engine = make_ocr_engine(config, smk.threads)
    run_ocr_shard(tasks, engine, open_cache(cache_location(config)), limits)


def kie_job(smk: Any) -> None:
    _setup_logging(smk)
    config = smk.config
    tasks = [
        Task(Path(out).stem, relpath, image, out, ocr=ocr)
        for image, ocr, out, relpath in zip(
            smk.params.images, smk.input.ocr, smk.output, smk.params.relpaths, strict=True
        )
    ]
    run_kie_shard(tasks, make_extractor(config), open_cache(cache_location(config)))
