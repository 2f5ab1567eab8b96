# Optional (lmdb.enabled, or `snakemake ... lmdb`): line images and their text as an LMDB
# training set for text recognisers, in results/lmdb/{train,val}/ with a manifest.
rule lmdb:
    input:
        plan=ancient(plan_file),
        ocr=manifests("ocr"),
    output:
        manifest=f"{RESULTS}/lmdb/manifest.json",
    log:
        f"{RESULTS}/logs/lmdb.log",
    conda:
        "../../envs/ocrkie.yaml"
    threads: 1
    resources:
        mem_mb=config["resources"]["kie"]["mem_mb"],
    params:
        results=results_location,
    message:
        "Cutting the text lines into an LMDB training set"
    script:
        "../scripts/make_lmdb.py"
