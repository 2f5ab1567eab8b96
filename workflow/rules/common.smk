from snakemake.utils import validate

from ocrkie.plan import describe, discover, make_shards

validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["results_dir"]
IMAGES = discover(config)
SHARDS = make_shards(IMAGES, config["shard_size"])

if workflow.is_main_process:
    logger.info(describe(config, IMAGES, SHARDS))


def ocr_record(image):
    return f"{RESULTS}/ocr/{image.id}.json"


def kie_record(image):
    return f"{RESULTS}/kie/{image.id}.json"
