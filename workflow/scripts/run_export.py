"""Snakemake script of the export rule: one shard's OCR records in one format."""

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.images import ImageLimits
    from ocrkie.jobs import export_languages, run_export

    run_export(
        name=smk.wildcards.format,
        plan_file=smk.input.plan,
        shard_name=smk.wildcards.shard,
        manifest=smk.output.manifest,
        results_location=smk.params.results,
        limits=ImageLimits.from_config(smk.config),
        languages=export_languages(smk.config),
    )
