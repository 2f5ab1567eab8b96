"""Plain text: the page's lines in reading order, the lines of a row on one line."""

from __future__ import annotations

from ..page import Page

FOLDER, SUFFIX, VERSION = "txt", ".txt", 1
NAMES_IMAGE = False  # names the page image (``Page.image``)


def render(page: Page) -> bytes:
    return (page.text + "\n").encode("utf-8") if page.text else b""
