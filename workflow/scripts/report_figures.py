"""Snakemake script of the report_figures rule: the figures and tables of the report."""

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
        results_location=smk.params.results,
        out={name: Path(path) for name, path in smk.output.items()},
    )
