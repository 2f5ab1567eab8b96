"""Every engine, by stage and backend: the one place that builds them.

The workflow (planning, resources, the key check, the settings' schema) and the shard jobs
both ask here, so an engine is known everywhere at once. A backend is a short name of
``BACKENDS``, or an engine of one's own: ``module:Class`` (importable) or
``path/to/file.py:Class``.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib import import_module
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import block_schema
from . import Engine

# stage -> backend -> "module:class" (imported when built, so a job loads only its engine)
BACKENDS: dict[str, dict[str, str]] = {
    "ocr": {
        "rapidocr": "rapid:RapidOcrEngine",
        "faster_paddle": "faster_paddle:FasterPaddleEngine",
        "easyocr": "easy:EasyOcrEngine",
        "trocr": "trocr:TrOcrEngine",
        "kraken": "kraken:KrakenEngine",
        "upstage": "upstage:UpstageOcrEngine",
    },
    "kie": {
        "learned": "learned:LearnedExtractor",
        "rules": "rules:RuleExtractor",
        "upstage": "upstage:UpstageExtractor",
        "cascade": "cascade:CascadeExtractor",
    },
    "layout": {"upstage": "upstage:UpstageLayoutParser"},
}
ALIASES = {"local": "rapidocr"}  # older names that still work

STAGES = tuple(BACKENDS)  # in the order they run; KIE reads the OCR records


def backend(stage: str, config: dict[str, Any]) -> str | None:
    """The backend the config names for ``stage``; None for a stage that is switched off
    (``kie_backend: none``: OCR only)."""
    if stage == "layout":
        return "upstage" if config["document_parse"]["enabled"] else None
    name = config[f"{stage}_backend"]
    if stage == "kie" and name == "none":
        return None
    return ALIASES.get(name, name)


def check_backends(config: dict[str, Any]) -> None:
    """A clear error for a backend that names no engine."""
    for stage in ("ocr", "kie"):
        name = backend(stage, config)
        if name is not None:
            engine_class(stage, name)


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
    return engine_class(stage, name).from_config(config, threads)


def engine_class(stage: str, name: str) -> type[Engine]:
    """The engine class a backend name stands for."""
    if name in BACKENDS[stage]:
        module, _, cls = BACKENDS[stage][name].partition(":")
        found = getattr(import_module(f"{__package__}.{module}"), cls)
    elif ":" in name:
        found = _outside_engine(name)
    else:
        choices = ", ".join(sorted(BACKENDS[stage]) + (["none"] if stage == "kie" else []))
        raise ConfigError(
            f"{stage}_backend: {name!r} is not one of {choices}, nor module:Class of an engine"
        )
    if getattr(found, "stage", None) != stage:
        raise ConfigError(f"{stage}_backend: {name} is not an engine of the {stage} stage")
    return found


def _outside_engine(spec: str) -> type[Engine]:
    """``module:Class`` or ``path/to/file.py:Class``: an engine of one's own."""
    where, _, cls = spec.rpartition(":")
    try:
        module = _load_file(Path(where)) if where.endswith(".py") else import_module(where)
        return getattr(module, cls)
    except (ImportError, OSError, AttributeError) as exc:
        raise ConfigError(f"cannot load the engine {spec}: {exc}") from exc


def _load_file(path: Path) -> Any:
    name = f"ocrkie_engine_{path.stem}"
    if name not in sys.modules:  # once per process: every build shares the module
        spec = importlib.util.spec_from_file_location(name, path.resolve())
        if spec is None or spec.loader is None or not path.is_file():
            raise ImportError(f"{path} is not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def settings_blocks(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The schema of each engine's settings block: every registered engine's, and those of
    the engines of one's own the config names."""
    classes = [engine_class(stage, name) for stage in BACKENDS for name in BACKENDS[stage]]
    for stage in ("ocr", "kie"):
        name = config.get(f"{stage}_backend", "")
        if isinstance(name, str) and ":" in name:
            classes.append(engine_class(stage, name))
    return {
        cls.settings_block: block_schema(cls.settings_schema, _summary(cls))
        for cls in classes
        if cls.settings_block
    }


def _summary(cls: type) -> str:
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0]
