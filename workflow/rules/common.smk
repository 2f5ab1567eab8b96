import sys
from pathlib import Path

from snakemake.utils import validate

from ocrkie.plan import (
    api_forecast,
    api_stages,
    cache_location,
    check_upstage_key,
    describe,
    discover,
    is_dry_run,
    uses_local_gpu,
)
from ocrkie.images import sha256_of
from ocrkie.inputs import make_shards
from ocrkie.s3inputs import ensure_keep_marker

validate(config, schema="../schemas/config.schema.yaml")


def s3_storage_prefix():
    """The default storage prefix when it is S3 (profiles/aws-batch), else None."""
    settings = workflow.storage_settings
    if settings is None or settings.default_storage_provider != "s3":
        return None
    return settings.default_storage_prefix.rstrip("/")


STORAGE_PREFIX = s3_storage_prefix()
RESULTS = config["results_dir"]
# Resolved here, where the storage is known, so that jobs read an explicit location.
config["cache"] = cache_location(config, STORAGE_PREFIX)
IMAGES = discover(config, STORAGE_PREFIX)
SHARDS = make_shards(IMAGES, config["shard_size"])
API_STAGES = api_stages(config)

if workflow.is_main_process:
    logger.info(describe(config, IMAGES, SHARDS, remote=STORAGE_PREFIX is not None))
    if API_STAGES and is_dry_run(sys.argv) and STORAGE_PREFIX:
        logger.info(
            "(the API cost forecast reads local files: not available with S3 storage)"
        )
    elif API_STAGES and is_dry_run(sys.argv):
        for line in api_forecast(config, IMAGES):
            logger.info(line)


def image_input(image):
    """An s3:// image as a storage object; other paths as they are (the default storage, if
    any, maps relative ones)."""
    return storage(image.path) if image.path.startswith("s3://") else image.path


def file_digest(path):
    return sha256_of(Path(path).read_bytes())[:16]


def record(stage, image):
    return f"{RESULTS}/{stage}/{image.id}.json"


def stage_resources(stage):
    """API stages take an `upstage_api` slot (the profile caps them). Local OCR takes a GPU
    where it will use one: on remote jobs (`_gpus` is what AWS Batch reads) and where
    onnxruntime has CUDA here. Elsewhere a `gpu` request would only serialise CPU jobs.
    """
    if stage in API_STAGES:
        return {"upstage_api": 1}
    memory = {"mem_mb": config["resources"][stage]["mem_mb"]}
    if stage == "ocr" and (STORAGE_PREFIX or uses_local_gpu(config)):
        return {"gpu": 1, "_gpus": 1, **memory}
    return memory


def stage_threads(stage):
    """API jobs wait on the network: they take an `upstage_api` slot, not a core."""
    return 0 if stage in API_STAGES else config["resources"][stage]["threads"]
