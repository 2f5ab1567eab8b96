"""ocrkie: per-image OCR and key-information extraction for Snakemake batch runs."""

__version__ = "0.1.0"
