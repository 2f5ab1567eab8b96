# Per-image exports (config `exports`): results/txt/<id>.txt, hocr/, alto/, page/, one format
# per job, so asking for one more format later reruns nothing else. They only read the OCR
# records: cheap enough to run on the submitting machine, also with AWS Batch.
rule export:
    input:
        plan=ancient(plan_file),
        ocr=rules.ocr.output.manifest,
    output:
        manifest=f"{RESULTS}/shards/{{format}}/{{shard}}-{{ocr}}-{{export}}.json",
    log:
        f"{RESULTS}/logs/{{format}}/{{shard}}-{{ocr}}-{{export}}.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        results=results_location,
    message:
        "{wildcards.format} export of {wildcards.shard}"
    script:
        "../scripts/run_export.py"
