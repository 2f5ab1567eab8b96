# Counts, timings and API costs of the whole run, and every failure, from the manifests.
rule summary:
    input:
        **{step: manifests(step) for step in [*STAGES, *EXPORTS]},
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
    params:
        agreed=agreed_fields(),
    message:
        "Tabulating the extracted fields"
    script:
        "../scripts/tables.py"


# The figures and pages of `snakemake --report report.html`, in a reader's order: the run at
# a glance (also on the landing page), the fields, what to review, the failures, sample pages,
# performance and costs (the report lists its sections alphabetically, hence the numbers).
rule report_figures:
    input:
        plan=ancient(plan_file),
        ocr=manifests("ocr"),
        kie=manifests("kie"),
        summary=rules.summary.output.summary,
        failures=rules.summary.output.failures,
        kie_table=rules.kie_tables.output.csv,
    output:
        overview=report(
            f"{RESULTS}/report/overview.html",
            caption="../report/overview.rst",
            category="1 Overview",
            labels={"figure": "At a glance: the run's figures"},
        ),
        status=report(
            f"{RESULTS}/report/status.png",
            caption="../report/status.rst",
            category="1 Overview",
            labels={"figure": "Images by status"},
        ),
        kie_table=report(
            f"{RESULTS}/report/kie_table.html",
            caption="../report/kie_table.rst",
            category="2 Fields",
            labels={"figure": "Extracted fields, one row per image"},
        ),
        fields=report(
            f"{RESULTS}/report/kie_fields.png",
            caption="../report/fields.rst",
            category="2 Fields",
            labels={"figure": "Fields found, and how sure"},
        ),
        review=report(
            f"{RESULTS}/report/review.html",
            caption="../report/review.rst",
            category="3 Review",
            labels={"figure": "Least certain values, with their crops"},
        ),
        confidence=report(
            f"{RESULTS}/report/ocr_confidence.png",
            caption="../report/confidence.rst",
            category="3 Review",
            labels={"figure": "OCR line confidence"},
        ),
        failures=report(
            f"{RESULTS}/report/failures.html",
            caption="../report/failures.rst",
            category="4 Failures",
            labels={"figure": "Failures by class"},
        ),
        samples=report(
            directory(f"{RESULTS}/report/samples"),
            patterns=["page_{n}.png"],
            caption="../report/samples.rst",
            category="5 Samples",
            labels=sample_labels,
        ),
        throughput=report(
            f"{RESULTS}/report/throughput.png",
            caption="../report/throughput.rst",
            category="6 Performance",
            labels={"figure": "Throughput"},
        ),
        costs=report(
            f"{RESULTS}/report/api_costs.html",
            caption="../report/costs.rst",
            category="7 Costs",
            labels={"figure": "API spend and cache savings"},
        ),
    log:
        f"{RESULTS}/logs/report_figures.log",
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        results=results_location,
        run=lambda wildcards: {
            "input": str(config["input_dir"]),
            "results": RESULTS_LOCATION,
            "prices": config["upstage"]["price_per_page"],
        },
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


# The run's last job: its failures against max_failed. It writes accepted.json when they
# are within it; else it fails, and the run exits with status 3 once every other job is
# done. Nothing else depends on it, so a rerun repeats only this check.
rule check_failures:
    input:
        summary=rules.summary.output.summary,
        tables=rules.kie_tables.output,
        figures=rules.report_figures.output,
        lmdb=rules.lmdb.output if config["lmdb"]["enabled"] else [],
    output:
        accepted=f"{RESULTS}/accepted.json",
    log:
        f"{RESULTS}/logs/check_failures.log",
    retries: 0  # it would only say the same again
    localrule: True
    conda:
        "../../envs/ocrkie.yaml"
    params:
        max_failed=config["max_failed"],
    message:
        "Checking the failed images against max_failed"
    script:
        "../scripts/check_failures.py"
