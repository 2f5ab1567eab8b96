"""Snakemake script of every stage rule: run the stage (the rule's name) over one shard."""

from ocrkie.jobs import run_stage_job

if __name__ == "__main__":  # not when a worker process (spawned) imports this file again
    run_stage_job(snakemake)  # noqa: F821 (injected by Snakemake)
