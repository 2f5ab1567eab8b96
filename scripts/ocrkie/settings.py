"""The configuration checked against its schema: the workflow's own settings (the base
schema) plus the block each engine declares, with their defaults filled in, and an answer a
person can act on: one line that names the setting, and the closest known name for a
misspelled one.

An engine owns its settings (``Engine.settings_block`` and ``settings_schema``), so a new
engine, in the package or in a file of one's own, brings its block with it.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from .errors import ConfigError

Settings = dict[str, dict[str, Any]]  # setting -> its JSON Schema
UNIT = {"minimum": 0, "maximum": 1}  # a share or a probability
KINDS = {bool: "boolean", int: "integer", float: "number", str: "string"}

# Blocks and settings that have moved: a config that still names them is told where.
MOVED = {
    "local": "the local block is now rapidocr (its settings; use_gpu is now rapidocr.device: "
    "auto, cpu, cuda or cuda:N) and worker (timeout_s, max_rss_mb)",
}


def setting(default: Any, doc: str, **schema: Any) -> dict[str, Any]:
    """One setting's schema: its type (from the default, unless given), default and doc."""
    return {"type": KINDS[type(default)], "default": default, "description": doc, **schema}


def block_schema(properties: Mapping[str, Any], description: str = "") -> dict[str, Any]:
    """The schema of a settings block: an object of these properties, nothing else."""
    return {
        "type": "object",
        "additionalProperties": False,
        "default": {},
        "description": description,
        "properties": dict(properties),
    }


def full_schema(base: dict[str, Any], blocks: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The base schema with the engines' blocks added to its properties."""
    schema = copy.deepcopy(base)
    for name, block in blocks.items():
        if name in schema["properties"]:
            raise ConfigError(f"an engine's settings block {name!r} is a setting of the workflow")
        schema["properties"][name] = block
    return schema


def load_base_schema(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def _filling_defaults(validator_class: Any) -> Any:
    """A validator that sets each missing property to its schema default (a copy), as
    Snakemake's ``validate`` does, so nested blocks get their defaults too."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator: Any, props: dict, instance: Any, schema: dict) -> Iterator:
        if isinstance(instance, dict):
            for name, subschema in props.items():
                if "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from check_properties(validator, props, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


FillingValidator = _filling_defaults(Draft202012Validator)


def check_settings(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """A ``ConfigError`` of one line for the first setting the schema refuses; else nothing
    (``config`` is left as it is)."""
    errors = list(Draft202012Validator(schema).iter_errors(config))
    if errors:
        raise ConfigError(describe(best_match(errors)))


def check_config(config: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """``check_settings`` in the same pass that fills in the defaults of whatever ``config``
    leaves out."""
    errors = list(FillingValidator(schema).iter_errors(config))
    if errors:
        raise ConfigError(describe(best_match(errors)))


def describe(error: ValidationError) -> str:
    """``shard_sise: no such setting (did you mean shard_size?)`` or ``shard_size: ...``."""
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        return "; ".join(_unknown(where, key, known) for key in unknown)
    if error.validator == "enum":
        choices = ", ".join(str(choice) for choice in error.validator_value)
        return f"{where or 'config'}: {error.instance!r} is not one of {choices}"
    return f"{where or 'config'}: {error.message}"


def suggestion(name: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest known name, or nothing."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _unknown(where: str, key: str, known: list[str]) -> str:
    name = f"{where}.{key}" if where else key
    if name in MOVED:
        return f"{name}: {MOVED[name]}"
    return f"{name}: no such setting{suggestion(key, known)}; see config/README.md"
