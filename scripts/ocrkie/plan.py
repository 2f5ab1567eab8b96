"""What the workflow will do, computed when the Snakefile is parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .cache import LmdbCache, cache_key
from .formats import read_json
from .images import sha256_of
from .inputs import InputImage, Shard, find_images, read_image_list
from .stages import kie_cache_key


def discover(config: dict[str, Any], storage_prefix: str | None = None) -> list[InputImage]:
    """The input images. An ``s3://`` input_dir is listed in S3 (paths are ``s3://`` URIs).
    ``storage_prefix``: the default storage prefix when that is S3 (AWS Batch); a relative
    input_dir is then listed under it, and its paths stay relative for the storage to map."""
    extensions = tuple(e.lower() for e in config["extensions"])
    if config["input_list"]:
        return read_image_list(config["input_list"])
    input_dir = config["input_dir"]
    if input_dir.startswith("s3://") or storage_prefix:
        return _list_s3(input_dir, storage_prefix, extensions)
    return find_images(input_dir, extensions)


def _list_s3(
    input_dir: str, storage_prefix: str | None, extensions: tuple[str, ...]
) -> list[InputImage]:
    from .s3inputs import list_s3_images

    if input_dir.startswith("s3://"):
        return list_s3_images(input_dir, extensions)
    if Path(input_dir).is_absolute():
        raise ValueError(
            f"input_dir {input_dir!r}: with S3 as the default storage (AWS Batch) use an "
            "s3:// URI or a folder relative to the default storage prefix"
        )
    folder = Path(input_dir).as_posix().strip("/")
    listed = list_s3_images(f"{storage_prefix}/{folder}", extensions)
    return [InputImage(i.id, f"{folder}/{i.relpath}", i.relpath) for i in listed]


def cache_location(config: dict[str, Any], storage_prefix: str | None = None) -> str:
    """Where the content cache is: ``auto`` means beside the results, which with S3 default
    storage (jobs that share no disk) is ``<prefix>/<results_dir>/cache`` in S3."""
    if config["cache"] != "auto":
        return config["cache"]
    if storage_prefix:
        return f"{storage_prefix}/{config['results_dir']}/cache"
    return str(Path(config["results_dir"]) / "cache")


def api_stages(config: dict[str, Any]) -> list[str]:
    """The stages that call Upstage, by result folder."""
    stages = [stage for stage in ("ocr", "kie") if config[f"{stage}_backend"] == "upstage"]
    return stages + (["layout"] if config["document_parse"]["enabled"] else [])


def describe(
    config: dict[str, Any], images: list[InputImage], shards: list[Shard], remote: bool = False
) -> str:
    """The plan in one line. ``remote``: jobs run elsewhere (S3 storage, AWS Batch), so this
    machine's GPU is beside the point."""
    source = config["input_list"] or config["input_dir"]
    layout = f", {len(shards)} layout jobs [upstage]" if "layout" in api_stages(config) else ""
    return (
        f"ocrkie: {len(images)} images from {source} in {len(shards)} shards "
        f"(shard_size {config['shard_size']}): {len(shards)} OCR jobs "
        f"[{config['ocr_backend']}], {len(shards)} KIE jobs [{config['kie_backend']}]{layout}, "
        f"1 summary job; {'remote jobs' if remote else device_note(config)}"
    )


def uses_local_gpu(config: dict[str, Any]) -> bool:
    """Whether local OCR jobs on this machine will run on a GPU."""
    if config["ocr_backend"] != "local" or config["local"]["use_gpu"] == "false":
        return False
    from .engines.rapid import cuda_available

    return cuda_available()


def device_note(config: dict[str, Any]) -> str:
    if config["ocr_backend"] != "local":
        return "OCR runs at Upstage"
    if uses_local_gpu(config):
        return "local OCR on the GPU (onnxruntime CUDA provider)"
    return "no usable GPU (onnxruntime has no CUDA provider): local OCR runs on the CPU"


ENDPOINTS = {
    "ocr": "POST /v1/document-digitization (model ocr)",
    "kie": "POST /v1/information-extraction",
    "layout": "POST /v1/document-digitization (model document-parse)",
}


def api_identities(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cache identity of each API stage, exactly as its engine reports it."""
    from .engines.upstage import UpstageExtractor, UpstageLayoutParser, UpstageOcrEngine
    from .kie import load_field_schema

    settings = config["upstage"]
    options = {k: v for k, v in config["document_parse"].items() if k != "enabled"}
    makers = {
        "ocr": lambda: UpstageOcrEngine(None, settings["ocr_model"]),
        "kie": lambda: UpstageExtractor(
            None, load_field_schema(config["kie_schema"]), settings["kie_model"]
        ),
        "layout": lambda: UpstageLayoutParser(None, options),
    }
    return {stage: makers[stage]().identity() for stage in api_stages(config)}


def api_forecast(config: dict[str, Any], images: list[InputImage]) -> list[str]:
    """Per API stage: how many images have a result already, are in the cache (free), or will
    be sent. Reads every image without a result (to hash it): meant for dry runs."""
    identities = api_identities(config)
    location = cache_location(config)
    cache = LmdbCache(location) if Path(location, "data.mdb").exists() else None
    lines = []
    for stage, identity in identities.items():
        done = cached = 0
        for image in images:
            record = Path(config["results_dir"], stage, f"{image.id}.json")
            if record.exists() and read_json(record)["status"] == "ok":
                done += 1
            elif cache and _in_cache(cache, stage, image, identity):
                cached += 1
        send = len(images) - done - cached
        lines.append(
            f"Upstage {stage}: {send} images will be sent to {ENDPOINTS[stage]}; "
            f"{cached} are in the cache (free), {done} already have results"
        )
    return lines


def _in_cache(cache: LmdbCache, stage: str, image: InputImage, identity: dict) -> bool:
    try:
        sha = sha256_of(Path(image.path).read_bytes())
    except OSError:
        return False
    key = kie_cache_key(sha, identity, None) if stage == "kie" else cache_key(stage, sha, identity)
    return cache.get(key) is not None


def is_dry_run(argv: list[str]) -> bool:
    """Whether Snakemake was asked for a dry run. The Snakefile is parsed before Snakemake
    settles its executor (``workflow.dryrun`` is still False then), so read the arguments."""
    return any(
        arg in ("--dry-run", "--dryrun")
        or (arg.startswith("-") and not arg.startswith("--") and "n" in arg[1:])
        for arg in argv[1:]
    )


def check_upstage_key(config: dict[str, Any]) -> None:
    """Stop before the first job when the key is missing or refused (one free GET /models)."""
    from .jobs import upstage_client

    upstage_client(config).check_key()
