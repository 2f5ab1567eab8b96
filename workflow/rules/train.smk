# Training the learned KIE model from labelled documents (train_dir) or from a previous run's
# Upstage KIE records (train_from) or from a reviewer's corrections (corrections, adapting
# learned_model): snakemake --profile profiles/local-gpu train_kie --config ...
rule train_kie:
    input:
        plan=ancient(plan_file),
        ocr=training_input,
        base=[f"{BASE}/model.json", f"{BASE}/weights.pt"] if BASE else [],
        corrections=config["corrections"] or [],
    output:
        card=f"{MODEL}/model.json",
        weights=f"{MODEL}/weights.pt",
        manifest=f"{MODEL}/manifest.csv",
    log:
        f"{RESULTS}/logs/train_kie.log",
    conda:
        "../../envs/ocrkie.yaml"
    threads: 1  # training computes on one thread: the model then depends on no core count
    resources:
        mem_mb=4096,
    params:
        results=results_location,
        train_dir=config["train_dir"],
        train_from=config["train_from"],
        corrections=config["corrections"],
        settings={**config["train"], "base": BASE},
    message:
        "Training the KIE model ({output.card})"
    script:
        "../scripts/train_kie.py"
