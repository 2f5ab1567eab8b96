"""The README stays short, and every relative link in it and in docs/ leads to a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO

PAGES = [
    REPO / "README.md",
    REPO / "config" / "README.md",
    *sorted((REPO / "docs").glob("*.md")),
    *sorted((REPO / "profiles").glob("*/README.md")),
]
# [text](target) and ![alt](target), outside code; the target up to a space, ")" or "#".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s#]*)(?:#[^)\s]*)?\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def relative_links(markdown: str) -> list[str]:
    """Link targets that are paths (no URL scheme, not a heading of the page itself)."""
    text = re.sub(r"`[^`\n]*`", "", FENCE.sub("", markdown))
    return [t for t in LINK.findall(text) if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_readme_is_read_top_to_bottom_in_at_most_300_lines() -> None:
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 300


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    targets = relative_links(page.read_text(encoding="utf-8"))
    missing = [t for t in targets if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(REPO)} links to missing files: {missing}"


def test_the_links_are_found() -> None:
    """A plain link, an image and a link to a heading count; code, URLs and anchors do not."""
    page = (
        "see [a](docs/a.md), ![b](img/b.png) and [c](c.md#part), not `[d](d.md)`,\n"
        "[e](https://e.org/x.md) or [f](#here)\n```\n[g](g.md)\n```\n"
    )
    assert relative_links(page) == ["docs/a.md", "img/b.png", "c.md"]


def test_the_readme_names_the_test_command_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make test" in ci.splitlines()[-1]
    assert "make test " in readme and "make demo " in readme
