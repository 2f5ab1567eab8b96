import sys

from snakemake.utils import validate

from ocrkie.plan import (
    api_forecast,
    api_stages,
    check_upstage_key,
    describe,
    discover,
    is_dry_run,
    make_shards,
)

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results_dir"]
IMAGES = discover(config)
SHARDS = make_shards(IMAGES, config["shard_size"])
API_STAGES = api_stages(config)

if workflow.is_main_process:
    logger.info(describe(config, IMAGES, SHARDS))
    if API_STAGES and is_dry_run(sys.argv):
        for line in api_forecast(config, IMAGES):
            logger.info(line)


def record(stage, image):
    return f"{RESULTS}/{stage}/{image.id}.json"


def stage_resources(stage):
    """Local OCR may use a GPU; API stages take an `upstage_api` slot (the profile caps them)."""
    if stage in API_STAGES:
        return {"upstage_api": 1}
    if stage == "ocr":
        return {"gpu": 1, "_gpus": 1, "mem_mb": config["resources"]["ocr"]["mem_mb"]}
    return {"mem_mb": config["resources"]["kie"]["mem_mb"]}


def stage_threads(stage):
    return 1 if stage in API_STAGES else config["resources"][stage]["threads"]
