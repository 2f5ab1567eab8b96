rule summary:
    input:
        ocr=[ocr_record(image) for image in IMAGES],
        kie=[kie_record(image) for image in IMAGES],
    output:
        summary=f"{RESULTS}/summary.json",
        failures=f"{RESULTS}/failures.csv",
    log:
        f"{RESULTS}/logs/summary.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        images=len(IMAGES),
    message:
        "Summarising {params.images} images"
    script:
        "../../scripts/summarize.py"
