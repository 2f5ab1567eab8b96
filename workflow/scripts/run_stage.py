"""Snakemake script of the OCR, KIE and layout rules: the stage (the rule's name) over one
shard, one record per image, then the shard's manifest."""

from ocrkie.logs import job_logging

if __name__ == "__main__":  # not when the engine's worker process (spawned) imports it again
    smk = snakemake  # noqa: F821 (injected by Snakemake)
    with job_logging(smk.log):
        from ocrkie.cache import cache_location
        from ocrkie.jobs import run_stage

        run_stage(
            stage_name=smk.rule,
            config=smk.config,
            plan_file=smk.input.plan,
            shard_name=smk.wildcards.shard,
            manifest=smk.output.manifest,
            results_location=smk.params.results,
            cache_location=cache_location(smk.config, smk.params.results),
            threads=smk.threads,
            mem_mb=smk.resources.get("mem_mb", 0),
        )
