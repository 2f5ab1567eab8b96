# Counts, timings and API costs of the whole run, and every failure, from the manifests.
rule summary:
    input:
        **{step: manifests(step) for step in ["ocr", "kie", *STAGES[2:], *EXPORTS]},
        plan=ancient(plan_file),
    output:
        summary=f"{RESULTS}/summary.json",
        failures=f"{RESULTS}/failures.csv",
        skipped=f"{RESULTS}/skipped.csv",
    log:
        f"{RESULTS}/logs/summary.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        results=results_location,
    message:
        "Summarising the run"
    script:
        "../scripts/summarize.py"


# One row per image with the extracted fields: results/kie.csv and results/kie.jsonl.
rule kie_tables:
    input:
        kie=manifests("kie"),
    output:
        csv=f"{RESULTS}/kie.csv",
        jsonl=f"{RESULTS}/kie.jsonl",
    log:
        f"{RESULTS}/logs/kie_tables.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    message:
        "Tabulating the extracted fields"
    script:
        "../scripts/tables.py"


# The figures and tables of `snakemake --report report.html`.
rule report_figures:
    input:
        plan=ancient(plan_file),
        ocr=manifests("ocr"),
        kie=manifests("kie"),
        summary=rules.summary.output.summary,
        failures=rules.summary.output.failures,
    output:
        status=report(
            f"{RESULTS}/report/status.png",
            caption="../report/status.rst",
            category="Overview",
        ),
        failures=report(
            f"{RESULTS}/report/failures.html",
            caption="../report/failures.rst",
            category="Overview",
        ),
        throughput=report(
            f"{RESULTS}/report/throughput.png",
            caption="../report/throughput.rst",
            category="Overview",
        ),
        confidence=report(
            f"{RESULTS}/report/ocr_confidence.png",
            caption="../report/confidence.rst",
            category="OCR",
        ),
        fields=report(
            f"{RESULTS}/report/kie_fields.png",
            caption="../report/fields.rst",
            category="KIE",
        ),
        costs=report(
            f"{RESULTS}/report/api_costs.html",
            caption="../report/costs.rst",
            category="API costs",
        ),
        samples=report(
            directory(f"{RESULTS}/report/samples"),
            patterns=["{name}.png"],
            caption="../report/samples.rst",
            category="Sample pages",
        ),
    log:
        f"{RESULTS}/logs/report_figures.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        results=results_location,
    message:
        "Drawing the report's figures"
    script:
        "../scripts/report_figures.py"


# The fields read with a confidence below review.threshold: results/review.csv, one row per
# field with a crop of where it was read (results/review/), and an empty `corrected` column.
rule review:
    input:
        plan=ancient(plan_file),
        kie=manifests("kie"),
    output:
        csv=f"{RESULTS}/review.csv",
        crops=directory(f"{RESULTS}/review"),
    log:
        f"{RESULTS}/logs/review.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        results=results_location,
        threshold=config["review"]["threshold"],
        max_fields=config["review"]["max_fields"],
    message:
        "Listing the fields to review"
    script:
        "../scripts/review.py"
