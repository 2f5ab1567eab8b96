"""Review and correct: review.csv with crops of the uncertain fields, and a model adapted to
a reviewer's corrections that the next run reads with (KIE rerun, OCR not)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image
from test_learned import DEFAULT_MODEL, RECEIPT

from conftest import SAMPLE_IMAGES, SAMPLES, Workdir, make_workdir
from ocrkie.learn.folder import read_card
from ocrkie.learn.training import truth_value
from ocrkie.review import COLUMNS

# every field below 0.999 is up for review: the samples' few uncertain ones and more
REVIEW = ("--configfile", "config/config.yaml", "review.yaml", "--config", "input_dir=scans")


def review_rows(workdir: Workdir) -> list[dict[str, str]]:
    with (workdir.results / "review.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def corrected(workdir: Workdir, rows: list[dict[str, str]]) -> Path:
    """The review file with each row's right value (the sample's key) in ``corrected``."""
    specs = {spec.name: spec for spec in RECEIPT.fields}
    for row in rows:
        key = json.loads((SAMPLES / "key" / f"{Path(row['image']).stem}.json").read_text())
        row["corrected"] = truth_value(specs[row["field"]], key[row["field"]]) or ""
    path = workdir.path / "reviewed.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_review_lists_uncertain_fields_with_crops_and_corrections_adapt_the_model(
    tmp_path: Path,
):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:3])
    (workdir.path / "review.yaml").write_text("review: {threshold: 0.999}\n")
    workdir.snakemake(*REVIEW)
    rows = review_rows(workdir)
    assert rows and list(rows[0]) == COLUMNS
    confidences = [float(row["confidence"]) for row in rows]
    assert confidences == sorted(confidences) and max(confidences) < 0.999
    for row in rows:
        assert row["corrected"] == ""
        if row["crop"]:  # a field found on the page: where it was read
            with Image.open(workdir.results / row["crop"]) as crop:
                assert crop.format == "PNG" and crop.width > crop.height > 4
    assert any(row["crop"] for row in rows)
    ocr_before = {name: r["timing"] for name, r in workdir.records("ocr").items()}

    reviewed = corrected(workdir, rows)
    workdir.snakemake("train_kie", "--config", "input_dir=scans", f"corrections={reviewed}")
    card = read_card(workdir.results / "model")
    assert card["base"] == read_card(DEFAULT_MODEL)["weights_sha256"]  # adapted, not anew
    assert card["documents"]["labelled"] == len({row["sha256"] for row in rows})

    done = workdir.snakemake(*REVIEW, "learned_model=results/model")
    assert "KIE of" in done.stdout and "OCR of" not in done.stdout  # KIE only reran
    assert {name: r["timing"] for name, r in workdir.records("ocr").items()} == ocr_before
    for record in workdir.records("kie").values():
        assert record["engine"]["model"] == card["weights_sha256"]
