"""Snakemake script: results/kie.csv and results/kie.jsonl from the KIE shard manifests."""

from ocrkie.tables import kie_tables_job

kie_tables_job(snakemake)  # noqa: F821 (injected by Snakemake)
