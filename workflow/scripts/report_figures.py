"""Snakemake script of the report_figures rule: the figures and pages of the report."""

from pathlib import Path

from ocrkie.logs import job_logging

smk = snakemake  # noqa: F821 (injected by Snakemake)
with job_logging(smk.log):
    from ocrkie.report import draw_report

    draw_report(
        plan_file=smk.input.plan,
        manifests={stage: list(smk.input[stage]) for stage in ("ocr", "kie")},
        summary_path=smk.input.summary,
        failures_path=smk.input.failures,
        kie_table_path=smk.input.kie_table,
        results_location=smk.params.results,
        run=smk.params.run,
        out={name: Path(path) for name, path in smk.output.items()},
    )
