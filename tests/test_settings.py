"""The config is checked against the workflow's schema and each engine's own block: one line
naming what does not fit, defaults filled in, and every engine setting documented."""

from __future__ import annotations

import pytest
import yaml

from conftest import REPO
from ocrkie.engines.registry import settings_blocks
from ocrkie.errors import ConfigError
from ocrkie.settings import check_config, full_schema, load_base_schema

SCHEMA = full_schema(
    load_base_schema(REPO / "workflow" / "schemas" / "config.schema.yaml"), settings_blocks({})
)


def defaults() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_the_shipped_config_fits_and_leaves_out_nothing_the_schema_defaults():
    config = defaults()
    check_config(config, SCHEMA)
    assert config["rapidocr"]["device"] == "auto" and config["worker"]["timeout_s"] == 300
    assert config["easyocr"]["batch_size"] == 0 and config["kraken"]["detector"] == "rapidocr"


def test_an_empty_config_gets_every_default():
    config: dict = {}
    check_config(config, SCHEMA)
    assert config["shard_size"] == 100 and config["ocr_backend"] == "faster_paddle"
    assert config["trocr"]["max_new_tokens"] == 64 and config["images"]["pdf_dpi"] == 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shard_sise": 5}, "shard_sise: no such setting (did you mean shard_size?)"),
        (
            {"rapidocr": {"text_scor": 1}},
            "rapidocr.text_scor: no such setting (did you mean text_score?)",
        ),
        ({"easyocr": {"device": "gpu"}}, "easyocr.device: 'gpu' does not match"),
        ({"local": {"use_gpu": "false"}}, "local: the local block is now rapidocr"),
        ({"shard_size": 0}, "shard_size: 0 is less than the minimum of 1"),
    ],
)
def test_a_setting_that_does_not_fit_is_named_in_one_line(change: dict, message: str):
    config = defaults() | change
    with pytest.raises(ConfigError) as error:
        check_config(config, SCHEMA)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_every_engine_setting_is_documented():
    documented = (REPO / "config" / "README.md").read_text()
    for block, schema in settings_blocks({}).items():
        for name in schema["properties"]:
            # a row of its own, or beside its block's first setting (`easyocr.x`, `.y`)
            assert f"`{block}.{name}`" in documented or f"`.{name}`" in documented, name
