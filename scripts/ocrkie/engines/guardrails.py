"""Per-engine guardrails, in one place: the devices an engine runs on, the batch sizes that
fit, how slow it is on a CPU, and the kind of model file it loads.

Each engine declares its ``Guardrails``; the checks below run when the workflow is parsed,
so a wrong device or model path is a clear error before any job, and a dry run warns of an
engine that would take hours on this CPU.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DeviceError, UnsupportedImage
from ..gpu import gpu_count
from ..images import PageImage
from ..settings import setting

DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
DEVICE_SETTING = setting(
    "auto",
    "auto (the job's own GPU where there is one, else the CPU), cpu, cuda or cuda:N",
    pattern=DEVICE.pattern,
)


@dataclass(frozen=True)
class ModelKind:
    """What a configured model path must be."""

    description: str  # for the error: "a TrOCR folder saved by save_pretrained"
    folder: bool
    suffixes: tuple[str, ...] = ()  # a file: one of these
    contains: tuple[str, ...] = ()  # a folder: these files
    model_type: str = ""  # a folder: its config.json says this model_type


@dataclass(frozen=True)
class Guardrails:
    devices: tuple[str, ...] = ("cpu",)  # "cpu", "cuda"
    batch_sizes: tuple[int, int] = (1, 1)  # lines recognised per batch, least and most
    cpu_batch: int = 1  # the batch size on a CPU (on a GPU: from its free memory)
    cpu_seconds_per_page: float = 0.0  # measured here; > 0: the dry run warns on a CPU
    # Seconds an image takes a job, by device kind ("cpu", "cuda"): the dry run's estimate
    # until this results folder has timings of its own.
    typical_seconds: dict[str, float] = field(default_factory=dict)
    model: ModelKind | None = None  # a model the user brings, at ``<engine>.model``


NO_GPU = "torch sees no GPU"


def planned_device(requested: str, engine: str) -> str:
    """The device as the plan states it (``cpu``, ``cuda`` or ``cuda:N``), checked against
    this machine: a GPU asked for and not there is a ``DeviceError``."""
    if not DEVICE.match(requested):
        raise DeviceError(f"{engine}.device: {requested!r} is not auto, cpu, cuda or cuda:N")
    if requested == "cpu":
        return "cpu"
    count = gpu_count()
    if requested == "auto":
        return "cuda" if count else "cpu"
    index = int(requested.partition(":")[2] or 0)
    if index >= count:
        have = f"cuda:0 to cuda:{count - 1}" if count > 1 else "only cuda:0"
        have = have if count else "no GPU torch can use"
        raise DeviceError(f"{engine}.device is {requested}, but this machine has {have}")
    return requested


def settle_device(name: str, guard: Guardrails, requested: str) -> str:
    """The device the plan uses: checked against the engine and this machine."""
    device = planned_device(requested, name)
    if device.partition(":")[0] not in guard.devices:
        raise DeviceError(f"{name} runs on {' or '.join(guard.devices)}, not on {device}")
    return device


def check_batch_size(name: str, guard: Guardrails, configured: int) -> None:
    low, high = guard.batch_sizes
    if configured and not low <= configured <= high:
        raise ConfigError(
            f"{name}.batch_size: {configured} is outside {low} to {high} "
            "(0 chooses one from free GPU memory)"
        )


def check_model(name: str, kind: ModelKind, configured: str) -> Path:
    """The configured model path, or a ``ValueError`` that says what is wrong with it."""
    wanted = f"{name}.model must name {kind.description}"
    if not configured:
        raise ConfigError(f"{wanted}; it is empty")
    path = Path(configured).expanduser()
    if not path.exists():
        raise ConfigError(f"{wanted}; {path} does not exist")
    if kind.folder != path.is_dir():
        raise ConfigError(f"{wanted}; {path} is a {'file' if kind.folder else 'folder'}")
    if kind.suffixes and path.suffix not in kind.suffixes:
        raise ConfigError(f"{wanted} ({', '.join(kind.suffixes)}); {path} is not one")
    missing = [f for f in kind.contains if not (path / f).is_file()]
    if missing:
        raise ConfigError(f"{wanted}; {path} has no {', '.join(missing)}")
    if kind.model_type:
        found = json.loads((path / "config.json").read_text()).get("model_type")
        if found != kind.model_type:
            raise ConfigError(f"{wanted}; {path} holds a {found!r} model")
    return path


def check_settings(name: str, guard: Guardrails, block: dict[str, Any]) -> tuple[str, Path | None]:
    """Everything about ``block`` (the engine's config block) that can be checked before
    a job: its device and its model. Returns both."""
    check_batch_size(name, guard, block.get("batch_size", 0))
    model = check_model(name, guard.model, block.get("model", "")) if guard.model else None
    return settle_device(name, guard, block.get("device", "auto")), model


def cpu_warning(name: str, guard: Guardrails, device: str, pages: int, slots: int) -> str | None:
    """The dry run's warning for an engine known to be slow on a CPU, with the expected time."""
    if device != "cpu" or not guard.cpu_seconds_per_page or not pages:
        return None
    minutes = pages * guard.cpu_seconds_per_page / max(1, slots) / 60
    expected = f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"
    return (
        f"warning: {name} is slow on a CPU (about {guard.cpu_seconds_per_page:g} s a page "
        f"per job): up to {pages} pages in {slots} parallel jobs take about {expected}; "
        "a GPU, or ocr_backend: local, is much faster"
    )


MIN_SIDE = 8  # pixels, for the PP-OCR engines
MAX_ASPECT = 100  # the longer side over the shorter


def check_page_shape(page: PageImage, engine: str) -> None:
    """A page a PP-OCR engine cannot work on gets a clear reason: rapidocr would fail with a
    bare ``ResizeImgError`` on a 20000x20 strip, faster-paddle would read it as a page with
    no text, an ok record of an image never read."""
    width, height = page.image.size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        raise UnsupportedImage(
            f"a {page.width}x{page.height} page (read at {width}x{height}) is too thin to "
            f"read: {engine} needs sides of at least {MIN_SIDE} pixels and at most "
            f"{MAX_ASPECT} times longer than wide"
        )
