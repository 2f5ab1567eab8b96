import contextlib
import io
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from ocrkie.awscheck import BatchSettings, check_or_stop
from ocrkie.breaker import clear_outages, outages
from ocrkie.cache import cache_location
from ocrkie.engines.learned import check_ocr, fitting_card
from ocrkie.engines.registry import active_stages, build, check_backends, check_together
from ocrkie.exports import DESCRIBED, FORMATS, exporter, requested
from ocrkie.fields import load_field_schema
from ocrkie.plan import DIGEST_PATTERN, PLAN_FILE, SHARD_PATTERN, job_slots
from ocrkie.errors import PlanInUse
from ocrkie.planner import api_forecast, prepare_run, write_plan
from ocrkie.results import Results, manifest_path
from ocrkie.s3 import ensure_keep_marker

validate(config, schema="../schemas/config.schema.yaml")
# Training the learned KIE model (train_kie): the labelled images go through the same
# cached OCR stage; KIE and the exports stay off, the labels take their place.
LABELS = [key for key in ("train_dir", "train_from", "corrections") if config[key]]
TRAINING = bool(LABELS)
if len(LABELS) > 1:
    raise WorkflowError(
        f"{' and '.join(LABELS)} are {['', '', 'two', 'three'][len(LABELS)]} sources of labels (a labelled folder, a "
        "previous run's KIE records, a review file's corrections): give one"
    )
if config["train_dir"]:
    config["input_dir"] = f"{config['train_dir'].rstrip('/')}/img"
    config["input_list"] = ""
if TRAINING:
    config["kie_backend"] = "none"
    config["exports"] = ["json"]
check_backends(config)


def s3_storage_prefix():
    """The default storage prefix when it is S3 (profiles/aws-batch), else None."""
    settings = workflow.storage_settings
    if settings is None or settings.default_storage_provider != "s3":
        return None
    return settings.default_storage_prefix.rstrip("/")


def batch_settings():
    """The AWS Batch settings this run will use: the command line over the profile, over the
    SNAKEMAKE_AWS_BATCH_JOB_* variables, exactly as Snakemake reads them."""
    from snakemake.cli import parse_args

    with contextlib.redirect_stderr(io.StringIO()):  # it says "Using profile ..." again
        _, args = parse_args(sys.argv[1:])
    return BatchSettings.from_arguments(vars(args))


def cli_flag(*names):
    """Whether Snakemake was given one of these flags. The Snakefile is parsed before
    Snakemake settles its executor (``workflow.dryrun`` is still False then)."""
    short = [n[1] for n in names if len(n) == 2]
    return any(
        arg in names
        or (
            arg.startswith("-")
            and not arg.startswith("--")
            and any(s in arg[1:] for s in short)
        )
        for arg in sys.argv[1:]
    )


STORAGE_PREFIX = s3_storage_prefix()
RESULTS = config["results_dir"]
# Jobs read images and write records themselves: under the storage prefix, if there is one.
RESULTS_LOCATION = f"{STORAGE_PREFIX}/{RESULTS}" if STORAGE_PREFIX else RESULTS
CACHE = cache_location(config, RESULTS_LOCATION)
PLAN = f"{RESULTS}/{PLAN_FILE}"
STAGES = active_stages(config)
EXPORTS = requested(config["exports"])
ENGINES = {
    stage: build(stage, config, config["resources"].get(stage, {}).get("threads", 1))
    for stage in STAGES
}
# a KIE model that cannot serve this OCR stops the run here; one that may, less well, warns
for warning in check_together(ENGINES):
    logger.warning(f"ocrkie: {warning}")


def results_location(wildcards):
    """Where jobs write the per-image records (S3 storage uploads only declared outputs)."""
    return RESULTS_LOCATION


def stage_threads(stage):
    """CPU threads per job: API jobs wait on the network and take an `upstage_api` slot."""
    return ENGINES[stage].threads(config["resources"].get(stage, {}).get("threads", 1))


def stage_resources(stage):
    """What the engine asks for (a GPU, an API slot), and memory for jobs that compute."""
    wanted = ENGINES[stage].resources(remote=STORAGE_PREFIX is not None)
    memory = config["resources"].get(stage, {}).get("mem_mb")
    return {**wanted, "mem_mb": memory} if memory and stage_threads(stage) else wanted


def manifests(step):
    """The manifests the plan expects of a stage or export: the targets of its shard jobs."""
    if PLANNED is None or step not in PLANNED.stages:
        return []
    names = PLANNED.stages[step].manifests.values()
    return [manifest_path(RESULTS, step, name) for name in names]


def make_plan():
    """Once per run, in the submitting Snakemake: shard jobs only read the plan file."""
    if not workflow.is_main_process or cli_flag("--lint"):
        return None
    if STORAGE_PREFIX:  # credentials, bucket, queue, role: one line each if wrong
        check_or_stop(STORAGE_PREFIX, batch_settings())
    results = Results(RESULTS_LOCATION)
    remote_jobs = workflow.nodes if STORAGE_PREFIX else None
    requests = ENGINES["ocr"].resources(remote=STORAGE_PREFIX is not None)
    limits = {
        name: workflow.global_resources[name].value
        for name in workflow.global_resources
    }
    slots = job_slots(stage_threads("ocr"), requests, limits, remote_jobs)
    planned = prepare_run(config, results, ENGINES, slots, STORAGE_PREFIX)
    location = f"{RESULTS_LOCATION}/{PLAN_FILE}"
    for line in planned.lines(ENGINES, location, slots, remote=remote_jobs is not None):
        logger.info(line)
    if cli_flag("--dry-run", "--dryrun", "-n"):
        for line in api_forecast(planned, config, ENGINES, results, CACHE):
            logger.info(line)
    return planned


PLANNED = make_plan()


def plan_file(wildcards):
    """The plan, which the shard jobs read. A run that executes jobs writes it here, the first
    time Snakemake asks for it: only now is it known whether this is a dry run (not when the
    Snakefile is parsed), and Snakemake has not yet looked for the file. A dry run, --report
    or --dag (no executor) writes nothing; where there is no plan file yet, its jobs declare
    none (they run nowhere, and no metadata records their inputs)."""
    if PLANNED is None:  # a job's own Snakemake: the plan is there
        return PLAN
    if workflow.executor_plugin is not None and not workflow.dryrun:
        try:
            write_plan(PLANNED, Results(RESULTS_LOCATION))
        except PlanInUse as error:
            raise WorkflowError(str(error)) from None
        return PLAN
    return PLAN if PLANNED.previous_bytes is not None else []


def where_things_are():
    """What a finished run wrote, and where (printed at the end of every run)."""
    at = RESULTS_LOCATION
    lines = [f"ocrkie results in {at}/:"]
    lines += [f"  {stage}/<id>.json  {stage.upper()} records" for stage in STAGES]
    lines += [
        f"  {name}/<id>{exporter(name).SUFFIX}  {DESCRIBED[name]}" for name in EXPORTS
    ]
    lines += [
        "  kie.csv, kie.jsonl  the extracted fields, one row per image",
        *(
            ["  review.csv, review/  the fields to check, with crops (docs/kie.md)"]
            if "kie" in STAGES
            else []
        ),
        "  summary.json, failures.csv  counts, timings, API costs; every failure",
        "  report/  figures for `snakemake --report report.html`",
    ]
    if config["lmdb"]["enabled"]:
        lines.append(
            "  lmdb/train, lmdb/val, lmdb/manifest.json  the line-image training set"
        )
    return lines


# Training the learned KIE model (train_kie): where the model goes, what it learns from, and
# the model it starts from, if any (checked here, so that one that does not fit stops the run).
MODEL = config["train"]["output"] or f"{RESULTS}/model"
# corrections adapt the model that read them, unless train.base names another
BASE = config["train"]["base"] or (
    config["learned_model"] if config["corrections"] else ""
)
if TRAINING and BASE:
    if Path(BASE).resolve() == Path(MODEL).resolve():
        raise WorkflowError(
            f"train.base and train.output are one folder ({BASE}): write the adapted model elsewhere"
        )
    BASE_CARD = fitting_card(Path(BASE), load_field_schema(config["kie_schema"]))
    for warning in check_ocr(Path(BASE), BASE_CARD, ENGINES["ocr"].identity()):
        logger.warning(f"ocrkie: {warning}")


def training_input(wildcards):
    """The OCR of the labelled images; a clear word when there are no labels to learn from."""
    if not TRAINING:
        raise WorkflowError(
            "train_kie learns from labelled documents: add --config "
            "train_dir=<folder with img/ and key/<stem>.json> or "
            "train_from=<results folder of a run with kie_backend=upstage> or "
            "corrections=<a review.csv with corrected values>"
        )
    return manifests("ocr")


wildcard_constraints:
    format="|".join(FORMATS),
    export=DIGEST_PATTERN,
    shard=SHARD_PATTERN,
    ocr=DIGEST_PATTERN,
    kie=DIGEST_PATTERN,
    layout=DIGEST_PATTERN,
