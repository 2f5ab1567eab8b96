"""Snakemake script: train the learned KIE model on the OCR records of labelled images."""

from ocrkie.learn.job import train_job

train_job(snakemake)  # noqa: F821 (injected by Snakemake)
