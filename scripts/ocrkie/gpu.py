"""Giving each concurrent OCR job a GPU of its own on a multi-GPU workstation.

Snakemake counts ``gpu`` resources but does not assign device ids (snakemake#281), so a job
takes a free device by holding an exclusive ``flock`` on that device's lock file for its
lifetime; the kernel releases it when the process ends, even on SIGKILL.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_DIR = "/tmp/ocrkie-gpu-locks"
_held: list[int] = []  # lock file descriptors kept open for the life of the process


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def gpu_request(remote: bool, device: str) -> dict[str, int]:
    """The Snakemake resources of a job that computes on a GPU when it has one. `_gpus` is
    what AWS Batch reads; `gpu` is what the local profile caps. Without a GPU a `gpu`
    request would only make CPU jobs queue behind each other."""
    return {"gpu": 1, "_gpus": 1} if remote or device != "cpu" else {}


def acquire_gpu(lock_dir: str | Path = LOCK_DIR, count: int | None = None) -> int | None:
    """The index of a GPU no other job on this machine holds, or None without GPUs."""
    count = gpu_count() if count is None else count
    if count == 0:
        return None
    Path(lock_dir).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        fd = os.open(Path(lock_dir) / f"gpu{index}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _held.append(fd)
        return index
    return os.getpid() % count  # more jobs than GPUs: share one rather than fail
