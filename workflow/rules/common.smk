import contextlib
import errno
import io
import json
import logging
import os
import signal
import sys
from pathlib import Path


from ocrkie.awscheck import BatchSettings, check_or_stop
from ocrkie.breaker import clear_outages, outages
from ocrkie.cache import cache_location
from ocrkie.commands import report_command, resume_command
from ocrkie.engines.learned import check_ocr, fitting_card
from ocrkie.engines.registry import (
    active_stages,
    build,
    check_backends,
    check_together,
    settings_blocks,
)
from ocrkie.errors import ConfigError, FatalError, SetupError
from ocrkie.exports import DESCRIBED, FORMATS, exporter, requested
from ocrkie.fields import load_field_schema
from ocrkie.inputs import relative_to_here
from ocrkie.plan import DIGEST_PATTERN, PLAN_FILE, SHARD_PATTERN, job_slots
from ocrkie.planner import api_forecast, prepare_run, write_plan
from ocrkie.results import Results, manifest_path
from ocrkie.s3 import ensure_keep_marker
from ocrkie import settings
from snakemake.settings.enums import Quietness

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"
# Shard jobs a dry run lists one by one; beyond, a count per rule and the list in a file.
DRY_RUN_LISTED = 1000
JOB_LIST = ".snakemake/ocrkie/dry-run-jobs.txt"

# -- errors a person can act on: one line, no traceback --------------------------------------


def stop(message, status=1):
    """End the run here with one line (and no traceback): the one place every setting, set-up
    and Ctrl-C message goes through."""
    logger.error(f"ocrkie: {message}")
    raise SystemExit(status)


@contextlib.contextmanager
def said_in_one_line():
    """Around the set-up steps, input functions and hooks: a wrong setting, a run that cannot
    start, or a fatal error before any job ends the run with its message alone."""
    try:
        yield
    except (ConfigError, SetupError, FatalError) as error:
        stop(str(error))


INTERRUPTED = []  # Ctrl-C was pressed (once or more)
JOBS_STARTED = []  # the scheduler runs: Ctrl-C goes to it, so that it stops the jobs


def answer_ctrl_c():
    """Ctrl-C: before any job, stop at once; while jobs run, let Snakemake stop them (it marks
    their outputs incomplete), drop the errors of the jobs it stops, then say how to resume
    (in ``onerror``)."""

    def stopped(signum, frame):
        if not JOBS_STARTED:
            stop("stopped before any job ran", 130)
        INTERRUPTED.append(signum)
        if (
            len(INTERRUPTED) == 1
        ):  # again while the jobs are being stopped: no traceback
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stopped)
    logger.addFilter(lambda record: not INTERRUPTED or record.levelno < logging.ERROR)


def after_ctrl_c():
    """In ``onerror``: the one line after Ctrl-C."""
    if INTERRUPTED:
        INTERRUPTED.clear()  # this line itself must show
        stop(f"stopped; resume with: {resume_command(sys.argv)}", 130)


# -- the set-up steps, in the order they run (at the end of this file) ------------------------


def check_config():
    """Every setting against the schema, one line for the first wrong one; then the defaults
    filled in. Each engine brings the schema of its own block."""
    schema = settings.full_schema(
        settings.load_base_schema(SCHEMA), settings_blocks(config)
    )
    settings.check_config(config, schema)  # the base schema and each engine's own block
    check_backends(config)


def use_training_folder():
    """Training the learned KIE model (train_kie): the labelled images go through the same
    cached OCR stage; KIE and the exports stay off, the labels take their place."""
    folder, previous = config["train_dir"], config["train_from"]
    labels = [key for key in ("train_dir", "train_from", "corrections") if config[key]]
    if len(labels) > 1:
        raise ConfigError(
            f"{' and '.join(labels)} are {['', '', 'two', 'three'][len(labels)]} sources of "
            "labels (a labelled folder, a previous run's KIE records, a review file's "
            "corrections): give one"
        )
    if folder and not os.path.isdir(folder):
        raise SetupError(
            f"train_dir {folder!r} is not a folder{relative_to_here(folder)}"
        )
    if folder and not os.path.isdir(os.path.join(folder, "img")):
        raise SetupError(
            f"train_dir {folder!r} has no img/ folder{relative_to_here(folder)}: it holds "
            "img/ (the images) and key/<stem>.json (their labels)"
        )
    if folder:
        config["input_dir"] = f"{folder.rstrip('/')}/img"
        config["input_list"] = ""
    if labels:
        config["kie_backend"] = "none"
        config["exports"] = ["json"]
    return bool(labels)


def check_working_directory():
    """Snakemake keeps its state in .snakemake/ of the working directory, in a dry run too."""
    state = Path(".snakemake")
    if not os.access(state if state.exists() else Path.cwd(), os.W_OK):
        raise SetupError(
            f"the working directory {Path.cwd()} is read-only, and Snakemake keeps its state "
            "in .snakemake/ there: run from a folder you can write (a clone of this "
            "workflow), with results_dir set to the read-only results to look at them"
        )


def check_training_base():
    """The model training starts from, if any: one that does not fit stops the run here."""
    if not (TRAINING and BASE):
        return
    if Path(BASE).resolve() == Path(MODEL).resolve():
        raise ConfigError(
            f"train.base and train.output are one folder ({BASE}): write the adapted model "
            "elsewhere"
        )
    card = fitting_card(Path(BASE), load_field_schema(config["kie_schema"]))
    for warning in check_ocr(Path(BASE), card, ENGINES["ocr"].identity()):
        logger.warning(f"ocrkie: {warning}")


def build_engines():
    """The engine of each stage (cheap: no model is loaded yet); a KIE model that cannot
    serve this OCR stops the run here, one that may, less well, warns."""
    engines = {
        stage: build(
            stage, config, config["resources"].get(stage, {}).get("threads", 1)
        )
        for stage in STAGES
    }
    for warning in check_together(engines):
        logger.warning(f"ocrkie: {warning}")
    return engines


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


def results_location(wildcards):
    """Where jobs write the per-image records (S3 storage uploads only declared outputs)."""
    return RESULTS_LOCATION


def stage_threads(stage):
    """CPU threads per job: API jobs wait on the network and take an `upstage_api` slot."""
    return ENGINES[stage].threads(config["resources"].get(stage, {}).get("threads", 1))


def stage_resources(stage):
    """What the engine asks for (a GPU, an API slot), and memory for jobs that compute.
    A job that takes no core (an API job) still needs one CPU on a cluster: without
    `cpus_per_task` the SLURM plugin asks for 0, which sbatch refuses."""
    wanted = ENGINES[stage].resources(remote=STORAGE_PREFIX is not None)
    memory = config["resources"].get(stage, {}).get("mem_mb")
    if not stage_threads(stage):
        return {**wanted, "cpus_per_task": 1}
    return {**wanted, "mem_mb": memory} if memory else wanted


def sample_labels(wildcards, output):
    """The labels of sample page n: which image it is, and why it was chosen."""
    chosen = json.loads(Path(output.samples, "pages.json").read_text())
    return chosen[wildcards.n]


def agreed_fields():
    """The schema's fields whose types the batch's agreement mends (``agreement``)."""
    schema = load_field_schema(config["kie_schema"])
    return [spec.name for spec in schema.fields if spec.type in config["agreement"]]


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
        unready = {line for engine in ENGINES.values() for line in engine.unready()}
        for line in sorted(unready):
            logger.warning(f"ocrkie: {line}")
        if planned.jobs() > DRY_RUN_LISTED:
            summarise_dry_run(planned)
    if cli_flag("--report") and planned.previous_bytes not in (
        None,
        planned.plan_bytes,
    ):
        logger.warning(
            f"ocrkie: these settings plan other work than the last run in {RESULTS_LOCATION}/ "
            "(another input or shard size): the report describes these settings; the run "
            "printed the report command with its own"
        )
    return planned


def summarise_dry_run(planned):
    """A dry run of many jobs prints Snakemake's count per rule (``--quiet``, which also
    spares it scheduling every job on paper) and writes the job list to a file."""
    path = Path(JOB_LIST)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{line}\n" for line in planned.job_list(RESULTS)))
        listed = f"each job in {JOB_LIST}"
    except OSError as error:  # a read-only share: the dry run itself still works
        listed = f"the job list not written ({error.strerror})"
    quiet = workflow.output_settings.quiet or set()
    if Quietness.ALL not in quiet:  # (--quiet all stays silent)
        workflow.output_settings.quiet = {Quietness.RULES, Quietness.PROGRESS}
    logger.info(
        f"ocrkie: {planned.jobs()} shard jobs, more than a dry run lists ({DRY_RUN_LISTED}): "
        f"the count per rule below, {listed}"
    )


@said_in_one_line()
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
        except OSError as error:
            if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise
            raise SetupError(
                f"results_dir {RESULTS_LOCATION} cannot be written ({error.strerror}): a "
                "dry run (-n) reads it as it is; a run needs a results_dir it can write"
            ) from None
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
    if any(exporter(name).NAMES_IMAGE for name in EXPORTS):
        lines.append(
            "  images/<id>.jpg|.png  upright copies of turned or PDF pages, named by the exports"
        )
    lines += [
        "  kie.csv, kie.jsonl  the extracted fields, one row per image",
        *(
            ["  review.csv, review/  the fields to check, with crops (docs/kie.md)"]
            if "kie" in STAGES
            else []
        ),
        "  summary.json, failures.csv  counts, timings, API costs; every failure",
        "  accepted.json  written when the failed images are within max_failed",
        "  report/  the report's figures; the report itself, with these settings:",
        f"    {report_command(sys.argv, REPORT)}",
    ]
    if config["lmdb"]["enabled"]:
        lines.append(
            "  lmdb/train, lmdb/val, lmdb/manifest.json  the line-image training set"
        )
    return lines


@said_in_one_line()
def training_input(wildcards):
    """The OCR of the labelled images; a clear word when there are no labels to learn from."""
    if not TRAINING:
        raise ConfigError(
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


# -- the set-up, step by step ------------------------------------------------------------------

with said_in_one_line():
    if workflow.is_main_process:
        answer_ctrl_c()
        check_working_directory()
    check_config()
    TRAINING = use_training_folder()
    STORAGE_PREFIX = s3_storage_prefix()
    RESULTS = config["results_dir"]
    # Jobs read images and write records themselves: under the storage prefix, if any.
    RESULTS_LOCATION = f"{STORAGE_PREFIX}/{RESULTS}" if STORAGE_PREFIX else RESULTS
    CACHE = cache_location(config, RESULTS_LOCATION)
    PLAN = f"{RESULTS}/{PLAN_FILE}"
    REPORT = "report.html" if STORAGE_PREFIX else f"{RESULTS}/report.html"
    STAGES = active_stages(config)
    EXPORTS = requested(config["exports"])
    ENGINES = build_engines()
    # Training: where the model goes, and the model it starts from, if any.
    MODEL = config["train"]["output"] or f"{RESULTS}/model"
    # corrections adapt the model that read them, unless train.base names another
    BASE = config["train"]["base"] or (
        config["learned_model"] if config["corrections"] else ""
    )
    check_training_base()
    PLANNED = make_plan()
