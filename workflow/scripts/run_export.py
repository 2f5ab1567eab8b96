"""Snakemake script of the export rule: render one shard's OCR records in one format."""

from ocrkie.jobs import run_export_job

run_export_job(snakemake)  # noqa: F821 (injected by Snakemake)
