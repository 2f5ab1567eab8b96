"""Hygiene: EasyOCR's private network directory; CSV cells a spreadsheet will not run; tables
and summaries written atomically; usage ledgers with a torn last line; no API key over plain
HTTP."""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from ocrkie.engines import easy
from ocrkie.errors import FatalError
from ocrkie.results import Results
from ocrkie.summary import write_summary
from ocrkie.tables import spreadsheet_cell, write_kie_tables
from ocrkie.upstage import UpstageClient
from ocrkie.usage import UsageLedger, total_usage


def test_easyocr_network_directory_is_private_and_gone_after_loading(monkeypatch) -> None:
    from ocrkie.engines.torch_device import import_torchvision

    import_torchvision()  # before easyocr: see its docstring
    import easyocr

    seen: dict[str, int | str] = {}
    build = easyocr.Reader.__init__

    def spy(self, *args, **kwargs) -> None:
        path = kwargs["user_network_directory"]
        info = os.lstat(path)
        seen.update(path=path, mode=stat.S_IMODE(info.st_mode), uid=info.st_uid)
        build(self, *args, **kwargs)
        assert path in sys.path  # what EasyOCR does with it

    monkeypatch.setattr(easyocr.Reader, "__init__", spy)
    easy.load_reader("cpu")
    assert seen["mode"] == 0o700 and seen["uid"] == os.getuid()
    assert Path(seen["path"]).name.startswith("ocrkie-easyocr-")
    assert seen["path"] not in sys.path and not Path(seen["path"]).exists()


def _kie_manifest(path: Path, entries: list[dict]) -> str:
    path.write_text(json.dumps({"entries": entries}), encoding="utf-8")
    return str(path)


HOSTILE = "=cmd|' /C calc'!A0"


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path: Path) -> None:
    fields = {
        "company": {"normalized": HOSTILE, "confidence": 0.9},
        "address": {"normalized": "@SUM(1+1)*cmd|' /C calc'!A0", "confidence": 0.8},
        "date": {"normalized": "\t=1+1", "confidence": 0.7},
        "total": {"normalized": "-12.50", "confidence": 0.6},
    }
    entry = {"id": "-x.jpg-1f0c9a2b", "path": "+evil.jpg", "status": "ok", "fields": fields}
    manifest = _kie_manifest(tmp_path / "kie-0.json", [entry])
    names = ["company", "address", "date", "total"]
    write_kie_tables([manifest], names, str(tmp_path / "kie.csv"), str(tmp_path / "kie.jsonl"))
    with (tmp_path / "kie.csv").open(encoding="utf-8", newline="") as handle:
        (row,) = csv.DictReader(handle)
    assert row["company"] == "'" + HOSTILE
    assert row["address"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert row["date"] == "'\t=1+1"
    assert row["path"] == "'+evil.jpg"
    assert row["total"] == "-12.50" and row["total_confidence"] == "0.6"  # numbers stay numbers
    assert row["id"] == "-x.jpg-1f0c9a2b"  # a key, of letters, digits and ._- only
    (line,) = (tmp_path / "kie.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["fields"] == fields and json.loads(line)["path"] == "+evil.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kie-0.json", "kie.csv", "kie.jsonl"]


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("-12.50", "-12.50"),
        ("+3", "+3"),
        ("-.5e3", "-.5e3"),
        ("-", "'-"),
        ("-1+1", "'-1+1"),
        ("+1 555 0100", "'+1 555 0100"),
        ("@home", "'@home"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("'=1", "'=1"),
        ("", ""),
    ],
)
def test_spreadsheet_cell(text: str, cell: str) -> None:
    assert spreadsheet_cell(text) == cell


def _failed(image: str, path: str, message: str) -> dict:
    return {
        "id": image,
        "path": path,
        "status": "error",
        "cached": False,
        "seconds": 0.5,
        "finished_at": "2026-01-01T00:00:00.000+00:00",
        "error": {"class": "UnreadableImage", "message": message, "stage": "ocr"},
    }


def test_failures_and_skipped_csv_are_quoted_and_the_summary_exact(tmp_path: Path) -> None:
    manifest = _kie_manifest(tmp_path / "ocr-0.json", [_failed("a-1", HOSTILE, "-bad @ 0")])
    skipped = [("@evil.txt", "not an image"), ("+1.png", "empty file")]
    summary = write_summary(
        {"ocr": [manifest]},
        str(tmp_path / "summary.json"),
        str(tmp_path / "failures.csv"),
        skipped,
        str(tmp_path / "skipped.csv"),
    )
    with (tmp_path / "failures.csv").open(encoding="utf-8", newline="") as handle:
        (failure,) = csv.DictReader(handle)
    assert (failure["image"], failure["path"]) == ("a-1", "'" + HOSTILE)
    assert failure["message"] == "'-bad @ 0" and failure["page"] == ""
    with (tmp_path / "skipped.csv").open(encoding="utf-8", newline="") as handle:
        assert [(r["path"], r["reason"]) for r in csv.DictReader(handle)] == [
            ("'@evil.txt", "not an image"),
            ("'+1.png", "empty file"),
        ]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["skipped"] == {"not an image": 1, "empty file": 1}


def test_a_full_disk_leaves_the_tables_as_they_were(tmp_path: Path, monkeypatch) -> None:
    manifest = _kie_manifest(tmp_path / "ocr-0.json", [_failed("a-1", "a.png", "bad")])
    names = ("summary.json", "failures.csv", "skipped.csv", "kie.csv", "kie.jsonl")
    paths = {name: tmp_path / name for name in names}
    for path in paths.values():
        path.write_text("before\n")
    fsync = os.fsync

    def full_for(*files: str):  # fsync as on a full disk, for files of these names
        def flush(fd: int) -> None:
            if any(f".{name}." in os.readlink(f"/proc/self/fd/{fd}") for name in files):
                raise OSError(errno.ENOSPC, "No space left on device")
            fsync(fd)

        return flush

    def summarize() -> None:
        args = [str(paths[n]) for n in ("summary.json", "failures.csv")]
        write_summary({"ocr": [manifest]}, *args, [("b.txt", "x")], str(paths["skipped.csv"]))

    for files in [("summary.json",), ("failures.csv",), ("skipped.csv",)]:
        monkeypatch.setattr(os, "fsync", full_for(*files))
        with pytest.raises(OSError, match="No space left"):
            summarize()
        assert paths[files[0]].read_text() == "before\n"  # those before it were written
    monkeypatch.setattr(os, "fsync", full_for("kie.csv", "kie.jsonl"))
    with pytest.raises(OSError, match="No space left"):
        write_kie_tables([], [], str(paths["kie.csv"]), str(paths["kie.jsonl"]))
    assert paths["kie.csv"].read_text() == paths["kie.jsonl"].read_text() == "before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, "ocr-0.json"])


def test_a_ledger_cut_off_mid_line_is_read_and_the_torn_line_reported(
    tmp_path: Path, caplog
) -> None:
    results = Results(str(tmp_path))
    ledger = UsageLedger(results, "ocr", "shard-0")
    for counter in ("requests", "requests", "http_429"):
        ledger("ocr", counter)
    with results.local_path(ledger.relpath).open("ab") as handle:
        handle.write(b'{"at": "2026-01-01T00:00:00.000+00:00", "endpoint": "oc')  # disk full
    with caplog.at_level(logging.WARNING, logger="ocrkie.usage"):
        assert total_usage(results).requests() == {"ocr": {"requests": 2, "http_429": 1}}
    assert "1 unreadable lines in the usage ledgers" in caplog.text


@pytest.mark.parametrize(
    "url",
    [
        "http://api.upstage.ai/v1",
        "http://10.0.0.5:8080/v1",
        "http://127.0.0.1.example.com/v1",
        "http://localhost.example.com/v1",
        "ftp://api.upstage.ai/v1",
    ],
)
def test_the_api_key_is_not_sent_in_clear_text(url: str, tmp_path: Path) -> None:
    with pytest.raises(FatalError, match=r"upstage\.base_url is .*: use https://"):
        UpstageClient("key", base_url=url, rate_limit_dir=tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.upstage.ai/v1",
        "http://127.0.0.1:8080/v1",
        "http://127.3.2.1/v1",
        "http://localhost:8080/v1",
        "http://[::1]:8080/v1",
    ],
)
def test_plain_http_is_accepted_to_localhost(url: str, tmp_path: Path) -> None:
    client = UpstageClient("key", base_url=url, rate_limit_dir=tmp_path)
    assert client.base_url == url.rstrip("/")
    client.close()


REPO = Path(__file__).resolve().parents[1]


def _locked(name: str) -> dict[str, list[str]]:
    """A lock file's entries: ``name==version`` -> its hashes."""
    text = (REPO / "envs" / name).read_text()
    entries = re.findall(
        r"^([A-Za-z0-9]\S*==\S+)((?: \\\n +--hash=sha256:[0-9a-f]{64})*)$", text, re.M
    )
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9]", text, re.M)), name
    return {pin: re.findall(r"sha256:[0-9a-f]{64}", hashes) for pin, hashes in entries}


def test_every_locked_package_is_pinned_with_hashes_and_torch_is_installed_first() -> None:
    runtime, dev, gpu = (_locked(f"requirements{s}.txt") for s in ("", "-dev", "-gpu"))
    for pins in (runtime, dev, gpu):
        assert pins and all(pins.values())
        assert not [p for p in pins if p.startswith(("torch==", "setuptools=="))]
    assert (REPO / "envs" / "requirements-dev.txt").read_text().count("\n-r requirements.txt\n")
    assert not {p.split("==")[0] for p in dev} & {p.split("==")[0] for p in runtime}
    assert set(gpu) == {p.replace("onnxruntime==", "onnxruntime-gpu==") for p in runtime}
    makefile = (REPO / "Makefile").read_text()
    torch_first = makefile.index("pip install --quiet torch==2.13.0\n")
    assert makefile.index("--require-hashes -r envs/requirements-dev.txt") > torch_first
