import json
import time

from ocrkie.outcome import EXIT_FAILED_IMAGES, closing_lines, too_many_failures
from ocrkie.progress import RunProgress

RUN_STARTED = time.time()


# The run's last job: its failures against max_failed. It writes accepted.json when they
# are within it; else it fails, and the run exits with status 3 once every other job is
# done. Nothing else depends on it, so a rerun repeats only this check.
rule check_failures:
    input:
        summary=rules.summary.output.summary,
        tables=rules.kie_tables.output,
        figures=rules.report_figures.output,
        lmdb=rules.lmdb.output if config["lmdb"]["enabled"] else [],
    output:
        accepted=f"{RESULTS}/accepted.json",
    log:
        f"{RESULTS}/logs/check_failures.log",
    retries: 0  # it would only say the same again
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        max_failed=config["max_failed"],
    message:
        "Checking the failed images against max_failed"
    script:
        "../scripts/check_failures.py"


def run_progress():
    """The submitting run's progress lines: per stage, of the images of the shards it makes
    (None in a job's own Snakemake)."""
    if PLANNED is None:
        return None
    to_do = {
        stage: sum(len(shard.images) for shard in PLANNED.outlooks[stage].to_make)
        for stage in STAGES
    }
    every = config["progress"]["every_seconds"]
    say = lambda line: logger.info(f"ocrkie {line}")
    return RunProgress(Results(RESULTS_LOCATION), to_do, every, say)


PROGRESS = run_progress()


def closing_block():
    """The end-of-run block, from summary.json (none before there is one)."""
    if TRAINING or PROGRESS is None:
        return []
    PROGRESS.stop()
    try:
        summary = json.loads(
            Results(RESULTS_LOCATION).folder.read_bytes("summary.json")
        )
    except FileNotFoundError:
        return []
    return closing_lines(
        summary,
        RESULTS_LOCATION,
        time.time() - RUN_STARTED,
        PROGRESS.counts(),
        config["upstage"]["price_per_page"],
        config["max_failed"],
    )


def only_the_check_failed():
    """Whether the run failed on its failed images alone (every other job done)."""
    scheduler = getattr(workflow, "scheduler", None)
    failed = {job.rule.name for job in getattr(scheduler, "failed", ())}
    if failed != {"check_failures"}:
        return False
    summary = json.loads(Results(RESULTS_LOCATION).folder.read_bytes("summary.json"))
    return too_many_failures(summary, config["max_failed"]) is not None
