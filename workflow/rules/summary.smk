rule summary:
    input:
        ocr=[record("ocr", image) for image in IMAGES],
        kie=[record("kie", image) for image in IMAGES],
        layout=(
            [record("layout", image) for image in IMAGES]
            if "layout" in API_STAGES
            else []
        ),
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
        logs=f"{RESULTS}/logs",
    message:
        "Summarising {params.images} images"
    script:
        "../../scripts/summarize.py"
