"""Snakemake script of the summary rule: summary.json, failures.csv and skipped.csv."""

import logging

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.summary import summarize

    summary = summarize(
        manifest_paths={step: list(files) for step, files in smk.input.items() if step != "plan"},
        plan_file=smk.input.plan,
        results_location=smk.params.results,
        summary_path=smk.output.summary,
        failures_path=smk.output.failures,
        skipped_path=smk.output.skipped,
    )
    logging.info("%s images, %s failed", summary["images"], summary["failed_images"])
