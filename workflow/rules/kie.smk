# One job per shard, reading the shard's OCR records; records in results/kie/.
rule kie:
    input:
        plan=ancient(plan_file),
        ocr=rules.ocr.output.manifest,
    output:
        manifest=f"{RESULTS}/shards/kie/{{shard}}-{{ocr}}-{{kie}}.json",
    log:
        f"{RESULTS}/logs/kie/{{shard}}-{{ocr}}-{{kie}}.log",
    conda:
        "../../envs/ocrkie.yaml"
    threads: stage_threads("kie") if "kie" in STAGES else 0
    resources:
        **(stage_resources("kie") if "kie" in STAGES else {}),
    params:
        results=results_location,
    message:
        "KIE of {wildcards.shard}"
    script:
        "../scripts/run_stage.py"
