# One KIE job per shard, reading the shard's OCR records (and, for an API, the images).
for shard in SHARDS:

    rule:
        name:
            f"kie_{shard.name}"
        input:
            ocr=[record("ocr", image) for image in shard.images],
            images=(
                [image_input(image) for image in shard.images]
                if "kie" in API_STAGES
                else []
            ),
        output:
            [record("kie", image) for image in shard.images],
        log:
            f"{RESULTS}/logs/kie/{shard.name}.log",
        conda:
            "../../envs/ocrkie.yaml"
        threads: stage_threads("kie")
        resources:
            **stage_resources("kie"),
        params:
            relpaths=[image.relpath for image in shard.images],
            # Not an input: the schema is a workflow file (on AWS Batch it travels with the
            # sources; as an input it would be looked up in S3). Its digest reruns KIE on change.
            schema=file_digest(config["kie_schema"]),
            images=[image.path for image in shard.images],
        message:
            f"KIE of {len(shard.images)} images ({config['kie_backend']} engine)"
        script:
            "../../scripts/kie_shard.py"
