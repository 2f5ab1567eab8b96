"""Snakemake script of the review rule: review.csv and the crops of its fields."""

from pathlib import Path

from ocrkie.logs import job_logging
from ocrkie.review import write_review

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    write_review(
        plan_file=smk.input.plan,
        manifest_paths=list(smk.input.kie),
        results_location=smk.params.results,
        threshold=smk.params.threshold,
        max_fields=smk.params.max_fields,
        csv_path=smk.output.csv,
        crops=Path(smk.output.crops),
    )
