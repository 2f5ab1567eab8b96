"""Snakemake script: OCR every image of one shard, loading the model once."""

from ocrkie.jobs import ocr_job

ocr_job(snakemake)  # noqa: F821 (injected by Snakemake)
