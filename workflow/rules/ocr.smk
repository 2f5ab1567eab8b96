# One OCR job per shard: the model is loaded once and every image gets its own record.
for shard in SHARDS:

    rule:
        name:
            f"ocr_{shard.name}"
        input:
            images=[image_input(image) for image in shard.images],
        output:
            [record("ocr", image) for image in shard.images],
        log:
            f"{RESULTS}/logs/ocr/{shard.name}.log",
        conda:
            "../../envs/ocrkie.yaml"
        threads: stage_threads("ocr")
        resources:
            **stage_resources("ocr"),
        params:
            relpaths=[image.relpath for image in shard.images],
        message:
            f"OCR of {len(shard.images)} images ({config['ocr_backend']} engine)"
        script:
            "../../scripts/ocr_shard.py"
