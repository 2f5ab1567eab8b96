"""Snakemake script: the figures and tables of `snakemake --report` (results/report/)."""

from ocrkie.report import report_job

report_job(snakemake)  # noqa: F821 (injected by Snakemake)
