"""Per-image exports rendered from the page model (``page.Page``) of any backend's OCR
record: plain text, hOCR, ALTO and PAGE XML.

A format is one module here with ``FOLDER``, ``SUFFIX``, ``VERSION`` (raise it when the output
changes: the format's shards rerun), ``NAMES_IMAGE`` (whether it names the page image: the job
then sets ``Page.image_ref``, see ``images``) and ``render(page) -> bytes``, plus one line in
``FORMATS``. Each format is a stage of its own, so asking for one more reruns nothing else.
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


def identity(name: str) -> dict[str, Any]:
    """What an export's files depend on besides the OCR records: the format's version."""
    return {"format": name, "version": exporter(name).VERSION}


def requested(config_exports: list[str]) -> list[str]:
    """The export stages a config asks for, in a stable order."""
    return [name for name in FORMATS if name in config_exports]
