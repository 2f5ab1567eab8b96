# How a run ends and says how far it is: progress lines while it lasts, the closing block,
# and exit status 3 when images failed beyond max_failed (check_failures, rules/summary.smk).
import json
import time

from ocrkie.outcome import EXIT_FAILED_IMAGES, closing_lines, too_many_failures
from ocrkie.progress import RunProgress

RUN_STARTED = time.time()


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
