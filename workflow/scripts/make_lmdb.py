"""Snakemake script of the lmdb rule: the line-image training set (results/lmdb/)."""

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.images import ImageLimits
    from ocrkie.lmdbset import make_lmdb

    make_lmdb(
        plan_file=smk.input.plan,
        results_location=smk.params.results,
        settings=smk.config["lmdb"],
        limits=ImageLimits.from_config(smk.config),
        manifest_path=smk.output.manifest,
    )
