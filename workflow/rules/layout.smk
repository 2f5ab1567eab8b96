# Optional (document_parse.enabled): layout elements per image in results/layout/.
rule layout:
    input:
        plan=ancient(plan_file),
    output:
        manifest=f"{RESULTS}/shards/layout/{{shard}}-{{layout}}.json",
    log:
        f"{RESULTS}/logs/layout/{{shard}}-{{layout}}.log",
    conda:
        "../../envs/ocrkie.yaml"
    threads: stage_threads("layout") if "layout" in STAGES else 0
    resources:
        **(stage_resources("layout") if "layout" in STAGES else {}),
    params:
        results=results_location,
    message:
        "Document Parse of {wildcards.shard}"
    script:
        "../scripts/run_stage.py"
