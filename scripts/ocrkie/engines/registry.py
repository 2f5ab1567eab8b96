"""Every engine, by stage and backend: the one place that builds them.

The workflow (planning, resources, the key check) and the shard jobs both ask here, so an
engine added to ``BACKENDS`` is known everywhere at once.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..errors import ConfigError
from . import Engine

# stage -> backend -> "module:class" (imported when built, so a job loads only its engine)
BACKENDS: dict[str, dict[str, str]] = {
    "ocr": {
        "local": "rapid:RapidOcrEngine",
        "easyocr": "easy:EasyOcrEngine",
        "trocr": "trocr:TrOcrEngine",
        "kraken": "kraken:KrakenEngine",
        "upstage": "upstage:UpstageOcrEngine",
    },
    "kie": {
        "learned": "learned:LearnedExtractor",
        "rules": "rules:RuleExtractor",
        "upstage": "upstage:UpstageExtractor",
    },
    "layout": {"upstage": "upstage:UpstageLayoutParser"},
}

STAGES = tuple(BACKENDS)  # in the order they run; KIE reads the OCR records


def backend(stage: str, config: dict[str, Any]) -> str | None:
    """The backend the config names for ``stage``; None for a stage that is switched off
    (``kie_backend: none``: OCR only)."""
    if stage == "layout":
        return "upstage" if config["document_parse"]["enabled"] else None
    name = config[f"{stage}_backend"]
    return None if stage == "kie" and name == "none" else name


def check_backends(config: dict[str, Any]) -> None:
    """A clear error for a backend no engine is registered for."""
    for stage in ("ocr", "kie"):
        name = backend(stage, config)
        if name is not None and name not in BACKENDS[stage]:
            choices = ", ".join(sorted(BACKENDS[stage]) + (["none"] if stage == "kie" else []))
            raise ConfigError(f"{stage}_backend: {name!r} is not one of {choices}")


def check_together(engines: dict[str, Engine]) -> list[str]:
    """What an engine asks of the others: the KIE engine, of the OCR it reads. Raises where
    one cannot serve another; returns the warnings where it may serve it less well."""
    warnings: list[str] = []
    if "ocr" in engines:
        for stage, engine in engines.items():
            if stage != "ocr":
                warnings += engine.check_upstream(engines["ocr"].identity())
    return warnings


def active_stages(config: dict[str, Any]) -> list[str]:
    return [stage for stage in STAGES if backend(stage, config)]


def build(stage: str, config: dict[str, Any], threads: int = 1) -> Engine:
    """The configured engine for ``stage``; cheap (no model is loaded yet)."""
    name = backend(stage, config)
    if name is None:
        raise ConfigError(f"the {stage} stage is switched off")
    module, _, cls = BACKENDS[stage][name].partition(":")
    engine_class: type[Engine] = getattr(import_module(f"{__package__}.{module}"), cls)
    return engine_class.from_config(config, threads)
