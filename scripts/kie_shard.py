"""Snakemake script: extract the key fields of every image of one shard."""

from ocrkie.jobs import kie_job

kie_job(snakemake)  # noqa: F821 (injected by Snakemake)
