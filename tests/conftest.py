"""Shared helpers: real Snakemake runs in throwaway working directories."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "resources" / "samples"
SAMPLE_IMAGES = sorted((SAMPLES / "img").iterdir())
RECORD_SCHEMAS = REPO / "workflow" / "schemas"  # <stage>-record.schema.json


@cache
def record_validators() -> dict[str, Any]:
    """A JSON Schema validator of each record format (``ocrkie.ocr/1``, ``ocrkie.kie/1``)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = {
        stage: json.loads((RECORD_SCHEMAS / f"{stage}-record.schema.json").read_text())
        for stage in ("ocr", "kie")
    }
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in schemas.values()
    )
    checker = Draft202012Validator.FORMAT_CHECKER
    return {
        stage: Draft202012Validator(schema, registry=registry, format_checker=checker)
        for stage, schema in schemas.items()
    }


def assert_valid_record(stage: str, record: dict) -> None:
    """The record holds to its format's JSON Schema (workflow/schemas/)."""
    errors = sorted(record_validators()[stage].iter_errors(record), key=str)
    assert not errors, f"{stage} record {record.get('image', {}).get('id')}: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
    )


@dataclass
class Workdir:
    """A working directory with the workflow linked in and images under ``scans/``."""

    path: Path

    @property
    def results(self) -> Path:
        return self.path / "results"

    @property
    def scans(self) -> Path:
        return self.path / "scans"

    @staticmethod
    def command(*args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            "profiles/local-gpu",
            "--cores",
            "2",
            *args,
        ]

    def start(self, *args: str) -> subprocess.Popen:
        """A run in the background, in a session of its own so that it can be killed whole."""
        return subprocess.Popen(
            self.command(*args),
            cwd=self.path,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    @staticmethod
    def kill(run: subprocess.Popen) -> None:
        """kill -9 the run and every process it started (rule scripts included)."""
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()

    def snakemake(self, *args: str, check: bool = True, timeout: int = 600, merge: bool = True):
        command = self.command(*args)
        done = subprocess.run(
            command,
            cwd=self.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"snakemake failed ({done.returncode}):\n{done.stdout[-4000:]}")
        return done  # .stdout holds stderr too, unless merge=False

    def records(self, stage: str) -> dict[str, dict]:
        """The stage's records by name; an OCR or KIE record is checked against its schema."""
        found = {p.stem: json.loads(p.read_text()) for p in (self.results / stage).glob("*.json")}
        if stage in ("ocr", "kie"):
            for record in found.values():
                assert_valid_record(stage, record)
        return found


def make_workdir(root: Path, images: list[Path]) -> Workdir:
    root.mkdir(parents=True, exist_ok=True)
    for name in ("workflow", "config", "scripts", "profiles", "envs", "resources"):
        (root / name).symlink_to(REPO / name)
    workdir = Workdir(root)
    workdir.scans.mkdir()
    for image in images:
        shutil.copy(image, workdir.scans / image.name)
    return workdir


def planned_jobs(output: str) -> dict[str, int]:
    """The job-count table that Snakemake prints (``-n`` or a run)."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", table, re.M)}


def without_timing(record: dict) -> dict:
    """A record minus what legitimately differs between two runs of the same work."""
    return {k: v for k, v in record.items() if k not in ("timing", "compute_seconds")}


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Workdir:
    """One uninterrupted run over all bundled samples, shared by several tests."""
    workdir = make_workdir(tmp_path_factory.mktemp("sample-run"), SAMPLE_IMAGES)
    workdir.snakemake("--config", "input_dir=scans", "shard_size=2")
    return workdir
