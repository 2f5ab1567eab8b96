"""Snakemake script of the check_failures rule: accepted.json, or a failed job when more
images failed than max_failed allows."""

from ocrkie.logs import job_logging
from ocrkie.outcome import check_failures

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    check_failures(smk.input.summary, smk.params.max_failed, smk.output.accepted)
