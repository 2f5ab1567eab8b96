"""The LMDB content cache, shared by processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ocrkie.cache import FileCache, LmdbCache, cache_key, open_cache, open_existing_cache


def _writer(path: str, start: int, layout: str = "lmdb") -> None:
    cache = LmdbCache(path) if layout == "lmdb" else FileCache(path)
    for n in range(start, start + 50):
        cache.put(f"ocr/{n}/x", {"n": n, "text": "é" * n})


def test_values_round_trip_and_survive_reopening(tmp_path: Path):
    cache = open_cache(str(tmp_path / "cache"))
    key = cache_key("ocr", "ab" * 32, {"name": "rapidocr", "params": {"text_score": 0.5}})
    assert cache.get(key) is None
    cache.put(key, {"text": "TOTAL 9.00", "lines": [{"polygon": [[0, 0]] * 4}]})
    cache.close()
    assert LmdbCache(tmp_path / "cache").get(key)["text"] == "TOTAL 9.00"


def test_keys_separate_engines_parameters_and_stages():
    sha = "cd" * 32
    keys = {
        cache_key("ocr", sha, {"name": "rapidocr", "params": {"text_score": 0.5}}),
        cache_key("ocr", sha, {"name": "rapidocr", "params": {"text_score": 0.6}}),
        cache_key("ocr", sha, {"name": "upstage", "model": "ocr"}),
        cache_key("kie", sha, {"name": "rapidocr", "params": {"text_score": 0.5}}),
        cache_key("ocr", "ef" * 32, {"name": "rapidocr", "params": {"text_score": 0.5}}),
    }
    assert len(keys) == 5
    assert cache_key("ocr", sha, {"a": 1, "b": 2}) == cache_key("ocr", sha, {"b": 2, "a": 1})


def test_concurrent_writers_in_separate_processes_lose_nothing(tmp_path: Path):
    path = str(tmp_path / "cache")
    LmdbCache(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, s)) for s in (0, 50, 100)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    cache = LmdbCache(path)
    assert all(cache.get(f"ocr/{n}/x")["n"] == n for n in range(150))


def test_an_empty_location_disables_the_cache():
    cache = open_cache("")
    cache.put("k", {"v": 1})
    assert cache.get("k") is None


def _same_key_writer(path: str, rounds: int) -> None:
    cache = FileCache(path)
    for _ in range(rounds):
        cache.put("ocr/aa/x", {"text": "é" * 5000})


def test_the_files_format_keeps_one_file_per_entry_for_many_machines(tmp_path: Path):
    """What a cluster's shared filesystem gets (profiles/slurm): entries round-trip, each is a
    file of its own, writers in separate processes lose nothing, and a reader never sees half
    of an entry being rewritten by another."""
    path = str(tmp_path / "cache")
    key = cache_key("ocr", "ab" * 32, {"name": "rapidocr"})
    cache = open_cache(path, "files")
    assert cache.get(key) is None and not (tmp_path / "cache").exists()  # nothing made to read
    cache.put(key, {"text": "TOTAL 9.00"})
    assert (tmp_path / "cache" / key).is_file() and not (tmp_path / "cache" / "data.mdb").exists()
    assert open_existing_cache(path, "files").get(key) == {"text": "TOTAL 9.00"}
    assert open_existing_cache(path, "lmdb").get(key) is None  # the other format: a miss

    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, s, "files")) for s in (0, 50, 100)]
    workers += [context.Process(target=_same_key_writer, args=(path, 200)) for _ in range(2)]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        value = FileCache(path).get("ocr/aa/x")
        assert value is None or value == {"text": "é" * 5000}
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert all(FileCache(path).get(f"ocr/{n}/x")["n"] == n for n in range(150))
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # no temporary file left behind
