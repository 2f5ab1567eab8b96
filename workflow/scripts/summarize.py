"""Snakemake script: write results/summary.json and results/failures.csv."""

from ocrkie.summary import summary_job

summary_job(snakemake)  # noqa: F821 (injected by Snakemake)
