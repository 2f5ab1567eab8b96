"""Checking the workflow's settings against their schema, with an answer a person can act on:
one line that names the setting, and the closest known name for a misspelled one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from .errors import ConfigError


def check_settings(config: Mapping[str, Any], schema: Mapping[str, Any]) -> None:
    """A ``ConfigError`` of one line for the first setting the schema refuses; else nothing."""
    errors = list(Draft202012Validator(schema).iter_errors(config))
    if errors:
        raise ConfigError(describe(best_match(errors), schema))


def describe(error: ValidationError, schema: Mapping[str, Any]) -> str:
    """``shard_sise: no such setting (did you mean shard_size?)`` or ``shard_size: ...``."""
    where = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        known = _properties(schema, error.absolute_path)
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
    return f"{name}: no such setting{suggestion(key, known)}; see config/README.md"


def _properties(schema: Mapping[str, Any], path: Iterable[Any]) -> list[str]:
    """The names the schema knows at ``path`` (a mapping nested in mappings)."""
    node = schema
    for part in path:
        node = node.get("properties", {}).get(part) or node.get("additionalProperties") or {}
    return list(node.get("properties", {}))
