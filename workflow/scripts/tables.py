"""Snakemake script of the kie_tables rule: kie.csv and kie.jsonl from the KIE manifests."""

import logging

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.fields import load_field_schema
    from ocrkie.tables import write_kie_tables

    fields = [spec.name for spec in load_field_schema(smk.config["kie_schema"]).fields]
    rows = write_kie_tables(list(smk.input.kie), fields, smk.output.csv, smk.output.jsonl)
    logging.info("%d rows in %s and %s", rows, smk.output.csv, smk.output.jsonl)
