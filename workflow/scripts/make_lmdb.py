"""Snakemake script: the LMDB text-recognition set (results/lmdb/) from the OCR records."""

from ocrkie.lmdbset import lmdb_job

lmdb_job(snakemake)  # noqa: F821 (injected by Snakemake)
