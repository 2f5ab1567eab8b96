"""The report's HTML pages: the run at a glance (also the report's landing page), the table
of extracted fields (sortable and searchable), the review list, the failures by class and the
API spend. Each is one self-contained file; images are embedded."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from pathlib import Path
from typing import Any

from PIL import Image

from .picks import Value

EXAMPLES = 5  # failures shown per class
TABLE_ROWS = 5000  # rows of the fields table (every row is in kie.csv)
DOUBT = 0.9  # values under this confidence are marked

STYLE = """
body{font-family:sans-serif;font-size:14px;margin:12px;color:#222}
table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eee}
th.sortable{cursor:pointer;user-select:none}
th.sortable:after{content:" \\2195";color:#999}
td.doubt{background:#fde0dc}
td.number{text-align:right}
img.crop{max-width:480px;max-height:160px;border:1px solid #999}
input#search{font-size:14px;padding:4px;width:24em;margin:0 0 8px 0}
"""

# Click a header to sort by it (again to reverse); type to keep the rows that contain the text.
SCRIPT = """
const table = document.getElementById("fields");
const rows = Array.from(table.tBodies[0].rows);
const count = document.getElementById("count");
function cell(row, n) { return row.cells[n].dataset.sort ?? row.cells[n].textContent; }
function compare(a, b) {
  const x = parseFloat(a), y = parseFloat(b);
  return (isNaN(x) || isNaN(y)) ? a.localeCompare(b) : x - y;
}
table.tHead.querySelectorAll("th").forEach((th, n) => th.addEventListener("click", () => {
  const up = th.dataset.order !== "up";
  table.tHead.querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = up ? "up" : "down";
  rows.sort((a, b) => (up ? 1 : -1) * compare(cell(a, n), cell(b, n)));
  rows.forEach(row => table.tBodies[0].appendChild(row));
}));
document.getElementById("search").addEventListener("input", event => {
  const words = event.target.value.toLowerCase();
  let shown = 0;
  rows.forEach(row => {
    const keep = row.textContent.toLowerCase().includes(words);
    row.hidden = !keep;
    shown += keep;
  });
  count.textContent = shown;
});
"""


def write_page(out: Path, title: str, body: str, script: str = "") -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body><h3>{_e(title)}</h3>{body}"
        + (f"<script>{script}</script>" if script else "")
        + "</body></html>\n",
        encoding="utf-8",
    )


def table(head: list[Any], rows: list[list[Any]], attributes: str = "") -> str:
    """A table; a cell is text, or (text, class) for a marked cell."""
    header = "".join(f"<th>{_e(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table {attributes}><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def overview(facts: list[tuple[str, str]], out: Path) -> None:
    """The run's figures, one per row: a fragment, so that the landing page can take it in
    (it is shown on its own as well)."""
    rows = "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in facts)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"<table class='ocrkie-overview' id='run-figures'>{rows}</table>\n", encoding="utf-8"
    )


def fields_table(rows: list[dict[str, str]], out: Path) -> None:
    """kie.csv as a table that sorts by any column and filters as you type."""
    columns = [c for c in (rows[0] if rows else {}) if c != "id"]
    shown = rows[:TABLE_ROWS]
    cells = [[_field_cell(column, row) for column in columns] for row in shown]
    header = "".join(f"<th class='sortable'>{_e(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in cells)
    cut = f" (the first {len(shown)}; every row is in kie.csv)" if len(rows) > len(shown) else ""
    write_page(
        out,
        "Extracted fields, one row per image",
        "<input id='search' type='search' placeholder='Search: a name, a value, an error...'>"
        f"<p><span id='count'>{len(shown)}</span> of {len(rows)} images shown{cut}. "
        "Click a column's name to sort by it; values under "
        f"{DOUBT} confidence are marked.</p>"
        f"<table id='fields'><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>",
        SCRIPT,
    )


def _field_cell(column: str, row: dict[str, str]) -> str:
    value = row.get(column, "")
    if column.endswith("_confidence") and value:
        marked = " doubt" if float(value) < DOUBT else ""
        return f"<td class='number{marked}'>{_e(value)}</td>"
    return f"<td>{_e(value)}</td>"


def review(values: list[tuple[Value, Image.Image | None]], total: int, out: Path) -> None:
    """The least certain values, each with the crop of the page it was read from."""
    rows = [
        [
            f"{value.confidence:.3f}",
            value.field,
            (value.value, "value"),
            _image(crop) if crop else ("(no source region in the record)", ""),
            value.path,
        ]
        for value, crop in values
    ]
    note = (
        f"<p>The {len(values)} values read with the lowest confidence, of {total} values "
        "found. Check each crop against the value read; kie.csv has every value.</p>"
        if values
        else "<p>No value was read (no KIE, or no image finished).</p>"
    )
    write_page(
        out,
        "Review: the least certain values",
        note + table(["confidence", "field", "value read", "on the page", "image"], rows),
    )


def failures(rows: list[dict[str, str]], out: Path) -> None:
    """Failures grouped by class (most frequent first), with a few examples of each."""
    groups = Counter((r["class"], r["stage"]) for r in rows)
    body = []
    for (name, stage), count in groups.most_common():
        examples = [r for r in rows if r["class"] == name and r["stage"] == stage][:EXAMPLES]
        listed = "<br>".join(f"{_e(r['path'])}: {_e(r['message'])}" for r in examples)
        more = f"<br>... and {count - len(examples)} more" if count > len(examples) else ""
        body.append([name, stage.upper(), str(count), (listed + more, "raw")])
    note = (
        f"<p>{len(rows)} failures in {len(groups)} classes; every one is in failures.csv.</p>"
        if rows
        else "<p>No image failed.</p>"
    )
    write_page(
        out, f"Failures ({len(rows)})", note + table(["class", "stage", "images", "examples"], body)
    )


def costs(summary: dict[str, Any], out: Path) -> None:
    """API calls and billed pages: spent, possibly billed besides, saved by the cache, and
    requests (429s)."""
    api = summary.get("api", {})
    sections = ("spent", "possibly_billed", "saved_by_cache", "requests")
    rows = []
    for endpoint in sorted({e for section in sections for e in api.get(section, {})}):
        spent, maybe, saved, sent = (api.get(section, {}).get(endpoint, {}) for section in sections)
        rows.append(
            [
                endpoint,
                spent.get("calls", 0),
                spent.get("billed_pages", 0),
                maybe.get("pages", 0),
                saved.get("calls", 0),
                saved.get("billed_pages", 0),
                sent.get("requests", 0),
                sent.get("http_429", 0),
            ]
        )
    head = [
        "endpoint",
        "calls paid",
        "pages paid",
        "pages possibly billed besides (answers lost)",
        "calls saved by the cache",
        "pages saved by the cache",
        "requests sent",
        "429 answers",
    ]
    note = "" if rows else "<p>No API was used in this run: all engines were local.</p>"
    write_page(out, "API spend and cache savings", note + table(head, rows))


def _image(image: Image.Image) -> tuple[str, str]:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img class='crop' alt='crop' src='data:image/png;base64,{data}'>", "raw"


def _cell(cell: Any) -> str:
    if isinstance(cell, tuple):
        text, kind = cell
        return f"<td class='{kind}'>{text if kind == 'raw' else _e(text)}</td>"
    return f"<td>{_e(cell)}</td>"


def _e(text: Any) -> str:
    return html.escape(str(text))
