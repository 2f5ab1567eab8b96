# One job per shard, reading the shard's OCR records; records in results/kie/.
rule kie:
    input:
        plan=ancient(PLAN),
        ocr=rules.ocr.output.manifest,
    output:
        manifest=f"{RESULTS}/shards/kie/{{shard}}-{{ocr}}-{{kie}}.json",
    log:
        f"{RESULTS}/logs/kie/{{shard}}-{{ocr}}-{{kie}}.log",
    conda:
        "../../envs/ocrkie.yaml"
    threads: stage_threads("kie")
    resources:
        **stage_resources("kie"),
    params:
        results=results_location,
        cache=CACHE,
    message:
        "KIE of {wildcards.shard}"
    script:
        "../../scripts/run_stage.py"
