# Optional (document_parse.enabled): Upstage Document Parse layout elements per image.
for shard in SHARDS if "layout" in API_STAGES else []:

    rule:
        name:
            f"layout_{shard.name}"
        input:
            images=[image_input(image) for image in shard.images],
        output:
            [record("layout", image) for image in shard.images],
        log:
            f"{RESULTS}/logs/layout/{shard.name}.log",
        conda:
            "../../envs/ocrkie.yaml"
        threads: stage_threads("layout")
        resources:
            **stage_resources("layout"),
        params:
            relpaths=[image.relpath for image in shard.images],
        message:
            f"Document Parse of {len(shard.images)} images (upstage)"
        script:
            "../../scripts/layout_shard.py"
