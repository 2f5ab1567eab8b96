"""What every torch engine shares: its device, its batch size, and torchvision on a CPU torch.

The device setting is ``auto`` (the job's own GPU where torch sees one, else the CPU),
``cpu``, ``cuda`` (any GPU; an error without one) or ``cuda:N`` (that GPU; an error if it
does not exist). A job's GPU comes from the same per-job assignment as the other local
engines (``gpu.acquire_gpu``): one device per concurrent job.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ModelLoadError
from ..gpu import acquire_gpu

if TYPE_CHECKING:
    from .guardrails import Guardrails

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


def job_device(planned: str) -> str:
    """The device a job loads its model on: ``cuda`` becomes the job's own GPU."""
    if planned != "cuda":
        return planned
    return f"cuda:{acquire_gpu() or 0}"


def batch_size(device: str, configured: int, per_item_mb: float, guard: Guardrails) -> int:
    """``configured`` within the engine's range; 0 means: on a GPU, what half its free
    memory holds, on the CPU the engine's CPU batch."""
    low, high = guard.batch_sizes
    if configured:
        return max(low, min(high, configured))
    if not device.startswith("cuda"):
        return guard.cpu_batch
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return max(low, min(high, int(free / 2**20 / 2 / per_item_mb)))


def shrinking(run: Callable[[int], R], size: int) -> tuple[R, int]:
    """``run(size)``; on a GPU out-of-memory ``size`` is halved and ``run`` tried again, so
    a shard never fails for a batch size that was too hopeful. Returns the result and the
    size that worked. At size 1 the error is the page's."""
    import torch

    while True:
        try:
            return run(size), size
        except torch.OutOfMemoryError:
            if size == 1:
                raise
            torch.cuda.empty_cache()
            size = max(1, size // 2)
            log.warning("out of GPU memory: batch size lowered to %d", size)


def in_batches(
    read: Callable[[Sequence[T]], list[R]], items: Sequence[T], size: int
) -> tuple[list[R], int]:
    """``read`` over ``items`` in batches of ``size`` (lowered on out-of-memory); returns
    every result and the size that worked."""
    results: list[R] = []
    while len(results) < len(items):
        start = len(results)
        batch, size = shrinking(lambda n, start=start: read(items[start : start + n]), size)
        results.extend(batch)
    return results, size


def import_torchvision() -> Any:
    """torchvision, also beside the CPU build of torch.

    PyPI's torchvision wheel is built for CUDA; beside a CPU torch its kernels do not load
    and its import fails (``operator torchvision::nms does not exist``). What EasyOCR and
    kraken use of it (models, transforms) needs no kernel, so the two operators it
    registers fakes for are declared, without kernels, and the import tried again."""
    try:
        import torchvision
    except RuntimeError as exc:
        if "torchvision::" not in str(exc):
            raise
        import torch

        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _keep.append(library)  # the declarations live as long as this object
        try:
            import torchvision
        except RuntimeError as again:
            raise ModelLoadError(f"torchvision does not import beside this torch: {again}") from exc
    return torchvision


_keep: list[Any] = []
