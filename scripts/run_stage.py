"""Snakemake script of every stage rule: run the stage (the rule's name) over one shard."""

from ocrkie.jobs import run_stage_job

run_stage_job(snakemake)  # noqa: F821 (injected by Snakemake)
