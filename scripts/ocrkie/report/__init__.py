"""The figures and pages of ``snakemake --report``: a batch at a glance, then what to check.

The counts come from the shard manifests and summary.json; only the pages shown (the review
list's crops and the sample pages) read their records and images.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from ..formats import read_json
from ..outcome import money
from ..results import Results
from . import figures, pages
from .picks import REVIEW, Sample, Sources, choose_samples, crop, draw_sample, least_certain

__all__ = ["draw_report"]


def draw_report(
    plan_file: str,
    manifests: dict[str, list[str]],
    summary_path: str,
    failures_path: str,
    kie_table_path: str,
    results_location: str,
    run: dict[str, Any],
    out: dict[str, Path],
) -> None:
    """Every figure and page of the report (``out``: one path per item) from the OCR and
    KIE manifests, the summary, the failures, kie.csv and, for the pages shown, the records
    and images. ``run``: the input and results folders and the prices per page, for the
    landing page."""
    from ..plan import decode_plan

    read = {stage: [read_json(p) for p in manifests[stage]] for stage in ("ocr", "kie")}
    stages = {stage: [e for m in ms for e in m["entries"]] for stage, ms in read.items()}
    summary = json.loads(Path(summary_path).read_text())
    failed = _csv(Path(failures_path))
    with open(plan_file, "rb") as handle:
        paths = {i.id: i.path for s in decode_plan(handle.read()) for i in s.images}
    shown = Sources(Results(results_location), paths)

    figures.status_figure(stages, out["status"])
    figures.throughput_figure(stages, out["throughput"])
    figures.confidence_figure(stages["ocr"], out["confidence"])
    figures.fields_figure(stages["kie"], out["fields"])
    pages.fields_table(_csv(Path(kie_table_path)), out["kie_table"])
    values = least_certain(stages["kie"])
    review = [(v, crop(shown, v)) for v in values[:REVIEW]]
    pages.review(review, len(values), out["review"])
    pages.failures(failed, out["failures"])
    pages.costs(summary, out["costs"])
    _samples(shown, stages, out["samples"])
    doubtful = sum(1 for v in values if v.confidence < pages.DOUBT)
    facts = run_figures(summary, read, stages, failed, (doubtful, len(values)), run)
    pages.overview(facts, out["overview"])


def _samples(shown: Sources, stages: dict[str, list[dict[str, Any]]], folder: Path) -> None:
    """page_1.png, page_2.png ... and pages.json: which image each is, and why it was chosen."""
    folder.mkdir(parents=True, exist_ok=True)
    uncertain, failed = choose_samples(stages["ocr"], stages["kie"])
    labels: dict[str, dict[str, str]] = {}

    def draw(sample: Sample) -> bool:
        n = str(len(labels) + 1)
        page = draw_sample(shown, sample, folder / f"page_{n}.png")
        if page is not None:
            labels[n] = _label(n, sample, page)
        return page is not None

    for sample in uncertain:
        draw(sample)
    next((True for sample in failed if draw(sample)), None)  # the first failed page drawn
    (folder / "pages.json").write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")


def _label(n: str, sample: Sample, page: int) -> dict[str, str]:
    pages = sample.entry.get("pages", 1)
    where = f" page {page} of {pages}" if pages > 1 else ""
    return {"sample": n, "image": sample.entry["path"] + where, "chosen": sample.why}


def run_figures(
    summary: dict[str, Any],
    manifests: dict[str, list[dict[str, Any]]],
    stages: dict[str, list[dict[str, Any]]],
    failed: list[dict[str, str]],
    doubtful: tuple[int, int],
    run: dict[str, Any],
) -> list[tuple[str, str]]:
    """The landing page's figures, as (name, value) rows; ``doubtful``: the values read under
    the confidence the report marks, and all values read."""
    images, failed_images = summary.get("images", 0), summary.get("failed_images", 0)
    skipped = sum(summary.get("skipped", {}).values())
    cached = summary.get("ocr", {}).get("cached", 0)
    classes = sorted(Counter(f["class"] for f in failed).items(), key=lambda c: (-c[1], c[0]))
    seconds = _span([e for es in stages.values() for e in es if not e["cached"]])
    ocr = summary.get("ocr", {})
    return [
        ("Images", f"{images} ({summary.get('pages', images)} pages) from {run['input']}"),
        ("Finished", f"{images - failed_images} ok, {failed_images} failed, {skipped} skipped"),
        ("Failed by class", ", ".join(f"{n} {name}" for name, n in classes) or "none"),
        ("From the cache", f"{cached} pages reused, not computed again"),
        ("Time", _duration(seconds) + " from the first page begun to the last finished"),
        ("Throughput", _rate(ocr.get("images_per_second"), "OCR")),
        ("Engines", _engines(manifests)),
        ("API spend", _spend(summary.get("api", {}), run.get("prices", {}))),
        *_cascade(summary.get("kie", {}).get("cascade"), run.get("prices", {})),
        ("To review", _to_review(*doubtful) if manifests["kie"] else "no values: no KIE ran"),
        ("Results", run["results"]),
    ]


def _cascade(cascade: dict[str, int] | None, prices: dict[str, float]) -> list[tuple[str, str]]:
    """``kie_backend: cascade``: the documents sent to the API, and their cost against all."""
    if not cascade:
        return []
    sent, documents = cascade["sent"], cascade["documents"]
    price = prices.get("information-extract", 0.0)
    sent_cost, all_cost = cascade["sent_pages"] * price, cascade["pages"] * price
    cost = (
        f"{money(sent_cost)} against {money(all_cost)}"
        if price
        else (f"{cascade['sent_pages']} pages against {cascade['pages']}")
    )
    return [
        (
            "Sent to the API",
            f"{sent} of {documents} documents ({sent / documents:.0%}), where the local "
            f"model was unsure; {cost} for sending all",
        )
    ]


def _to_review(doubtful: int, values: int) -> str:
    return f"{doubtful} of {values} values read under {pages.DOUBT} confidence"


def _span(entries: list[dict[str, Any]]) -> float | None:
    if not entries:
        return None
    ends = [datetime.fromisoformat(e["finished_at"]).timestamp() for e in entries]
    starts = [end - e["seconds"] for end, e in zip(ends, entries, strict=True)]
    return max(ends) - min(starts)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "nothing computed (all from the cache)"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _rate(per_second: float | None, stage: str) -> str:
    if not per_second:
        return f"{stage}: nothing computed"
    return f"{stage}: {per_second * 3600:,.0f} images an hour ({per_second * 60:.1f} a minute)"


def _engines(manifests: dict[str, list[dict[str, Any]]]) -> str:
    found = []
    for stage, read in manifests.items():
        engine = read[0]["identity"].get("engine", {}) if read else {}
        if engine:
            found.append(f"{stage.upper()} {engine.get('name')} {engine.get('version', '')}")
    return ", ".join(name.strip() for name in found) or "none"


def _spend(api: dict[str, Any], prices: dict[str, float]) -> str:
    """Pages (and money, at ``upstage.price_per_page``) paid, and saved by the cache."""
    spent, saved = api.get("spent", {}), api.get("saved_by_cache", {})
    if not spent and not saved:
        return "none: every engine ran here"

    def pages(usage: dict[str, Any]) -> int:
        return sum(u.get("billed_pages", 0) for u in usage.values())

    def cost(usage: dict[str, Any]) -> str:
        amount = sum(u.get("billed_pages", 0) * prices.get(e, 0) for e, u in usage.items())
        return f" ({money(amount)})" if any(prices.get(e) for e in usage) else ""

    calls = sum(u.get("calls", 0) for u in spent.values())
    return (
        f"{pages(spent)} pages paid in {calls} calls{cost(spent)}; "
        f"{pages(saved)} pages saved by the cache{cost(saved)}"
    )


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
