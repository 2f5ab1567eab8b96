"""Snakemake script of the kie_tables rule: kie.csv and kie.jsonl from the KIE manifests."""

import logging

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.fields import load_field_schema
    from ocrkie.tables import write_kie_tables

    fields = [spec.name for spec in load_field_schema(smk.config["kie_schema"]).fields]
    agreed = list(smk.params.agreed)
    kie, csv_path, jsonl_path = list(smk.input.kie), smk.output.csv, smk.output.jsonl
    rows = write_kie_tables(kie, fields, csv_path, jsonl_path, agreed)
    logging.info("%d rows in %s and %s", rows, csv_path, jsonl_path)
