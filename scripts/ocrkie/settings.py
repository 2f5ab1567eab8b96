"""The configuration checked against its schema: the workflow's own settings (the base
schema) plus the block each engine declares, with their defaults filled in.

An engine owns its settings (``Engine.settings_block`` and ``settings_schema``), so a new
engine, in the package or in a file of one's own, brings its block with it.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators

from .errors import ConfigError

# Blocks and settings that have moved: a config that still names them is told where.
MOVED = {
    "local": "the local block is now rapidocr (its settings; use_gpu is now rapidocr.device: "
    "auto, cpu, cuda or cuda:N) and worker (timeout_s, max_rss_mb)",
}


Settings = dict[str, dict[str, Any]]  # setting -> its JSON Schema
UNIT = {"minimum": 0, "maximum": 1}  # a share or a probability
KINDS = {bool: "boolean", int: "integer", float: "number", str: "string"}


def setting(default: Any, doc: str, **schema: Any) -> dict[str, Any]:
    """One setting's schema: its type (from the default, unless given), default and doc."""
    return {"type": KINDS[type(default)], "default": default, "description": doc, **schema}


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


def check_config(config: dict[str, Any], schema: dict[str, Any]) -> None:
    """Fill in the defaults of ``config`` in place; a ``ConfigError`` in one line for the
    first setting that does not fit, naming it (and the likely intended name of a typo)."""
    errors = sorted(FillingValidator(schema).iter_errors(config), key=_depth)
    if errors:
        raise ConfigError(_explain(errors[0], schema))


def _depth(error: Any) -> tuple[int, str]:
    return (len(error.absolute_path), error.message)


def _explain(error: Any, schema: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        name = unknown[0] if unknown else "?"
        key = f"{where}.{name}" if where else name
        if key in MOVED:
            return f"{key}: {MOVED[key]}"
        close = difflib.get_close_matches(name, known, n=1)
        prefix = f"{where}." if where else ""
        hint = f"; did you mean {prefix}{close[0]}?" if close else " (config/README.md lists them)"
        return f"unknown setting {key}{hint}"
    message = error.message if len(error.message) < 200 else f"{error.message[:200]}..."
    return f"setting {where or '(top level)'}: {message}"
