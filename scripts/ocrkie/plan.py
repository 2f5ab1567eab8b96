"""What the workflow will do, computed when the Snakefile is parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .inputs import InputImage, Shard, find_images, make_shards, read_image_list


def discover(config: dict[str, Any]) -> list[InputImage]:
    extensions = tuple(e.lower() for e in config["extensions"])
    if config["input_list"]:
        return read_image_list(config["input_list"])
    return find_images(config["input_dir"], extensions)


def cache_location(config: dict[str, Any]) -> str:
    if config["cache"] == "auto":
        return str(Path(config["results_dir"]) / "cache")
    return config["cache"]


def describe(config: dict[str, Any], images: list[InputImage], shards: list[Shard]) -> str:
    source = config["input_list"] or config["input_dir"]
    return (
        f"ocrkie: {len(images)} images from {source} in {len(shards)} shards "
        f"(shard_size {config['shard_size']}): {len(shards)} OCR jobs "
        f"[{config['ocr_backend']}], {len(shards)} KIE jobs [{config['kie_backend']}], "
        f"1 summary job; {device_note(config)}"
    )


def device_note(config: dict[str, Any]) -> str:
    if config["ocr_backend"] != "local":
        return "OCR runs remotely"
    from .engines.rapid import cuda_available

    if config["local"]["use_gpu"] != "false" and cuda_available():
        return "local OCR on the GPU (onnxruntime CUDA provider)"
    return "no usable GPU (onnxruntime has no CUDA provider): local OCR runs on the CPU"


__all__ = ["cache_location", "describe", "discover", "make_shards"]
