"""Snakemake script: Document Parse of every image of one shard."""

from ocrkie.jobs import layout_job

layout_job(snakemake)  # noqa: F821 (injected by Snakemake)
