# One KIE job per shard, reading the shard's OCR records.
for shard in SHARDS:

    rule:
        name:
            f"kie_{shard.name}"
        input:
            ocr=[ocr_record(image) for image in shard.images],
            schema=config["kie_schema"],
        output:
            [kie_record(image) for image in shard.images],
        log:
            f"{RESULTS}/logs/kie/{shard.name}.log",
        conda:
            "../../envs/ocrkie.yaml"
        threads: config["resources"]["kie"]["threads"]
        resources:
            mem_mb=config["resources"]["kie"]["mem_mb"],
        params:
            relpaths=[image.relpath for image in shard.images],
            images=[image.path for image in shard.images],
        message:
            f"KIE of {len(shard.images)} images ({config['kie_backend']} engine)"
        script:
            "../../scripts/kie_shard.py"
