"""An engine of one's own is one file: named ``path/to/file.py:Class`` in the config, its
settings block checked with the rest of the config, and nothing else touched."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import REPO, SAMPLE_IMAGES, Workdir, make_workdir

ENGINE = REPO / "tests" / "engines" / "ink_box.py"


def run(workdir: Workdir, *config: str, block: str = "", check: bool = True):
    """A run with this engine, its settings block (YAML) in a config file of its own."""
    (workdir.path / "ink_box.yaml").write_text(f"ink_box: {{{block}}}\n")
    return workdir.snakemake(
        "--configfile",
        "config/config.yaml",
        "ink_box.yaml",
        "--config",
        "input_dir=scans",
        "kie_backend=none",
        f"ocr_backend={ENGINE}:InkBoxOcr",
        *config,
        check=check,
    )


def test_an_engine_outside_the_package_reads_with_its_own_settings(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    run(workdir, block="label: receipt")
    records = workdir.records("ocr")
    assert len(records) == 2
    for record in records.values():
        assert record["status"] == "ok"
        assert record["engine"]["name"] == "ink_box"
        assert record["engine"]["params"] == {"threshold": 128, "label": "receipt"}
        [line] = record["lines"]
        assert line["text"] == "receipt"
        x0, y0 = line["polygon"][0]
        x1, y1 = line["polygon"][2]
        width, height = record["image"]["width"], record["image"]["height"]
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height  # the ink, not the page
        assert (x1 - x0) * (y1 - y0) < width * height


def test_its_settings_are_checked_like_the_workflows(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    typo = run(workdir, "-n", block="treshold: 90", check=False)
    assert typo.returncode != 0
    assert "ink_box.treshold: no such setting (did you mean threshold?)" in typo.stdout
    wrong = run(workdir, "-n", block="threshold: 300", check=False)
    assert wrong.returncode != 0
    assert "ink_box.threshold: 300 is greater than the maximum of 255" in wrong.stdout


def test_a_setting_of_its_own_is_part_of_its_identity(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    Image.new("RGB", (64, 64), "white").save(workdir.path / "scans" / "blank.png")
    run(workdir)
    assert "Nothing to be done" in run(workdir).stdout
    blank = [r for r in workdir.records("ocr").values() if r["image"]["path"] == "blank.png"]
    assert blank[0]["status"] == "ok" and blank[0]["lines"] == []
    run(workdir, block="threshold: 60")
    for record in workdir.records("ocr").values():
        assert record["engine"]["params"]["threshold"] == 60
