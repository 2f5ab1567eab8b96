"""Per-image exports rendered from the page model (``page.Page``) of any backend's OCR
record: plain text, hOCR, ALTO and PAGE XML.

A format is one module here with ``FOLDER``, ``SUFFIX``, ``VERSION`` (raise it when the output
changes: the format's shards rerun), ``NAMES_IMAGE`` (whether it names the page image: the job
then sets ``Page.image_ref``, see ``images``), ``DECLARES_LANGUAGE`` (whether it writes
``Page.languages``: the ``language`` setting is then part of its identity) and
``render(page) -> bytes``, plus one line in ``FORMATS``. Each format is a stage of its own, so
asking for one more reruns nothing else.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

FORMATS = {"txt": "text", "hocr": "hocr", "alto": "alto", "page": "pagexml"}  # name -> module
DESCRIBED = {"txt": "plain text", "hocr": "hOCR 1.2", "alto": "ALTO 4.4", "page": "PAGE XML 2019"}
RECORDS = "json"  # the canonical records: always written, listed in config for clarity


def exporter(name: str) -> ModuleType:
    return import_module(f"{__package__}.{FORMATS[name]}")


def identity(name: str, languages: tuple[str, ...] = ()) -> dict[str, Any]:
    """What an export's files depend on besides the OCR records: the format's version and,
    for a format that declares it, the text's languages (``languages``)."""
    module = exporter(name)
    found = {"format": name, "version": module.VERSION}
    if getattr(module, "DECLARES_LANGUAGE", False):
        found["language"] = list(languages)
    return found


def languages(setting: str | list[str], engine_language: str) -> tuple[str, ...]:
    """The text's languages the exports declare, the main one first: the ``language``
    setting's BCP 47 tags, or for ``auto`` the OCR engine's (``Engine.language``; none where
    it has none)."""
    if setting == "auto":
        return (engine_language,) if engine_language else ()
    tags = [setting] if isinstance(setting, str) else setting
    return tuple(tag for tag in tags if tag)


def requested(config_exports: list[str]) -> list[str]:
    """The export stages a config asks for, in a stable order."""
    return [name for name in FORMATS if name in config_exports]
