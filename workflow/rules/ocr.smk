# One job per shard: the model loads once, every image gets its own record in results/ocr/.
rule ocr:
    input:
        plan=ancient(plan_file),  # the shard's images; a rewritten plan reruns nothing by itself
    output:
        manifest=f"{RESULTS}/shards/ocr/{{shard}}-{{ocr}}.json",
    log:
        f"{RESULTS}/logs/ocr/{{shard}}-{{ocr}}.log",
    conda:
        "../../envs/ocrkie.yaml"
    threads: stage_threads("ocr")
    resources:
        **stage_resources("ocr"),
    params:
        results=results_location,
    message:
        "OCR of {wildcards.shard}"
    script:
        "../scripts/run_stage.py"
