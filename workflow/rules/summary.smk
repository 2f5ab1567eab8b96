# Counts, timings and API costs of the whole run, and every failure, from the manifests.
rule summary:
    input:
        ocr=manifests("ocr"),
        kie=manifests("kie"),
        layout=manifests("layout"),
    output:
        summary=f"{RESULTS}/summary.json",
        failures=f"{RESULTS}/failures.csv",
    log:
        f"{RESULTS}/logs/summary.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    message:
        "Summarising the run"
    script:
        "../../scripts/summarize.py"
