"""Snakemake script of the train_kie rule: the learned KIE model from labelled documents."""

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.engines.registry import build
    from ocrkie.learn.job import train

    train(
        plan_file=smk.input.plan,
        results_location=smk.params.results,
        train_dir=smk.params.train_dir,
        train_from=smk.params.train_from,
        corrections=smk.params.corrections,
        settings=smk.params.settings,
        schema_path=smk.config["kie_schema"],
        ocr_identity=build("ocr", smk.config).identity(),  # the records it learns from
        card_path=smk.output.card,
    )
