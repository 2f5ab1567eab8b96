"""The plan: shards that stay put, manifest names that change exactly when records would."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ocrkie.formats import write_json_atomic
from ocrkie.inputs import InputImage, image_id
from ocrkie.plan import (
    Shard,
    decode_plan,
    describe_changes,
    encode_plan,
    form_shards,
    job_slots,
    manifest_header,
    manifest_names,
    split_evenly,
    survey,
)
from ocrkie.results import Results

IDENTITY = {"engine": {"name": "rapidocr", "params": {"text_score": 0.5}}}


def images(names, size=100) -> list[InputImage]:
    return [InputImage(image_id(n), f"scans/{n}", n, size, 1) for n in names]


def members(shards) -> dict[str, list[str]]:
    return {s.name: [i.id for i in s.images] for s in shards}


@pytest.mark.parametrize(
    ("count", "shard_size", "slots", "shards"),
    [(40, 16, 2, 4), (7, 100, 2, 2), (3, 2, 8, 3), (1000, 100, 2, 10), (5, 1, 1, 5), (9, 4, 2, 4)],
)
def test_new_images_make_a_multiple_of_the_slots_in_shards(count, shard_size, slots, shards):
    pool = images(f"{n}.jpg" for n in range(count))
    groups = split_evenly(pool, shard_size, slots)
    sizes = [len(g) for g in groups]
    assert len(groups) == shards
    assert max(sizes) <= shard_size and max(sizes) - min(sizes) <= 1  # equal files: equal counts
    assert sorted(i.id for g in groups for i in g) == sorted(i.id for i in pool)


def test_shards_hold_about_equal_bytes():
    rng = random.Random(3)
    pool = [
        InputImage(
            image_id(f"{n}.jpg"), f"{n}.jpg", f"{n}.jpg", rng.choice([5, 40, 300]) * 10**4, 1
        )
        for n in range(200)
    ]
    groups = split_evenly(pool, 100, 2)
    loads = [sum(i.size for i in g) for g in groups]
    assert len(groups) == 2 and max(loads) - min(loads) <= 3 * 10**6  # within one large file
    assert max(len(g) for g in groups) <= 100


def test_forty_receipts_on_two_cores_make_one_shard_per_core_per_round():
    forty = images(f"{n}.jpg" for n in range(40))
    assert [len(s.images) for s in form_shards(forty, [], set(), 16, 2)] == [10, 10, 10, 10]
    assert [len(s.images) for s in form_shards(forty, [], set(), 100, 2)] == [20, 20]


def test_started_shards_keep_their_images_and_new_images_form_new_shards():
    rng = random.Random(7)
    names = [f"batch/{rng.getrandbits(40):x}.jpg" for _ in range(500)]
    before = form_shards(images(names), [], set(), 16, 2)
    started = {s.name for s in before}
    new = [f"new/{n}.jpg" for n in range(30)]
    after = form_shards(images(names + new), before, started, 16, 2)
    assert {k: v for k, v in members(after).items() if k in started} == members(before)
    fresh = [s for s in after if s.name not in started]
    assert sorted(i.relpath for s in fresh for i in s.images) == sorted(new)
    # cores or shard_size changing later moves nothing that has started
    assert members(form_shards(images(names + new), after, set(members(after)), 4, 16)) == members(
        after
    )


def test_unstarted_shards_are_formed_again_and_vanished_images_leave_their_shard():
    names = [f"{n:03d}.jpg" for n in range(10)]
    first = form_shards(images(names), [], set(), 5, 1)
    kept, dropped = first[0], first[1]
    gone = kept.images[0].relpath
    remaining = [n for n in names if n != gone]
    again = form_shards(images([*remaining, "010.jpg"]), first, {kept.name}, 10, 1)
    shrunk = next(s for s in again if s.name == kept.name)
    assert [i.relpath for i in shrunk.images] == [i.relpath for i in kept.images][1:]
    assert dropped.name not in members(again)  # never started: its images were re-planned
    (formed,) = (s for s in again if s.name != kept.name)
    expected = [*(i.relpath for i in dropped.images), "010.jpg"]
    assert sorted(i.relpath for i in formed.images) == sorted(expected)


def test_job_slots_follow_cores_threads_and_capped_resources():
    assert job_slots(1, {}, {"_cores": 2}, None) == 2
    assert job_slots(2, {}, {"_cores": 8}, None) == 4
    assert job_slots(1, {"gpu": 1, "_gpus": 1}, {"_cores": 16, "gpu": 2}, None) == 2
    assert job_slots(0, {"upstage_api": 1}, {"_cores": 2, "upstage_api": 4}, None) == 4
    assert job_slots(4, {"gpu": 1}, {"_cores": 2}, 32) == 32  # remote: one machine per job
    assert job_slots(4, {}, {"_cores": 2}, None) == 1


def test_job_slots_on_a_cluster_follow_jobs_and_the_cores_of_all_jobs_together():
    # SLURM: --jobs bounds the jobs at once, --cores the cores they hold together
    assert job_slots(1, {}, {"_cores": 100, "_nodes": 100}, None) == 100
    assert job_slots(4, {"gpu": 1, "_gpus": 1}, {"_cores": 100, "_nodes": 100}, None) == 25
    assert job_slots(1, {}, {"_cores": None, "_nodes": 40}, None) == 40  # no --cores: no cap
    assert (
        job_slots(0, {"upstage_api": 1}, {"_cores": 100, "_nodes": 100, "upstage_api": 4}, None)
        == 4
    )
    # a local run given --jobs too: the smaller bound
    assert job_slots(1, {}, {"_cores": 8, "_nodes": 3}, None) == 3


def test_the_plan_file_round_trips_and_is_byte_stable():
    shards = form_shards(images(["a.jpg", "b/ç #1.png", "c\nd.tif"]), [], set(), 2, 1)
    shards[0].generation["kie"] = 2
    data = encode_plan(shards, "scans")
    assert data == encode_plan(shards, "scans")
    decoded = decode_plan(data)
    assert members(decoded) == members(shards)
    assert decoded[0].images == shards[0].images and decoded[0].generation == {"kie": 2}


def test_manifest_names_change_with_identity_images_and_generation():
    shard = form_shards(images(["a.jpg", "b.jpg"]), [], set(), 8, 1)[0]
    base = manifest_names("ocr", IDENTITY, [shard], None).manifests[shard.name]
    other = {"engine": {"name": "rapidocr", "params": {"text_score": 0.7}}}
    assert manifest_names("ocr", other, [shard], None).manifests[shard.name] != base
    replaced = Shard(shard.name, (*images(["a.jpg"], size=101), shard.images[1]))
    assert manifest_names("ocr", IDENTITY, [replaced], None).manifests[shard.name] != base
    bumped = Shard(shard.name, shard.images, {"ocr": 1})
    assert manifest_names("ocr", IDENTITY, [bumped], None).manifests[shard.name] != base
    assert manifest_names("ocr", IDENTITY, [shard], None).manifests[shard.name] == base
    # KIE names carry the OCR manifest they read, so new OCR reruns KIE
    ocr_a = manifest_names("ocr", IDENTITY, [shard], None)
    ocr_b = manifest_names("ocr", other, [shard], None)
    kie = {"engine": {"name": "ocrkie-rules"}}
    kie_a = manifest_names("kie", kie, [shard], ocr_a).manifests[shard.name]
    kie_b = manifest_names("kie", kie, [shard], ocr_b).manifests[shard.name]
    assert kie_a.startswith(ocr_a.manifests[shard.name] + "-") and kie_a != kie_b


def test_describe_changes_names_each_setting_with_both_values():
    old = {
        "engine": {"name": "rapidocr", "params": {"text_score": 0.5}},
        "images": {"max_side": 4096},
    }
    new = {
        "engine": {"name": "rapidocr", "params": {"text_score": 0.7}},
        "images": {"max_side": 2048},
    }
    assert describe_changes(old, new) == "text_score 0.5, now 0.7; max_side 4096, now 2048"
    assert describe_changes(old, old) == ""
    other = {"engine": {"name": "upstage-ocr", "model": "ocr"}, "images": {"max_side": 4096}}
    assert describe_changes(old, other) == "rapidocr, now upstage-ocr"


def test_survey_says_what_runs_and_why(tmp_path: Path):
    results = Results(str(tmp_path))
    shards = form_shards(images([f"{n}.jpg" for n in range(6)]), [], set(), 2, 1)
    old_plan = manifest_names("ocr", IDENTITY, shards, None)
    for shard in shards:  # a finished run at text_score 0.5
        name = old_plan.manifests[shard.name]
        header = manifest_header("ocr", IDENTITY, shard)
        write_json_atomic(tmp_path / "shards" / "ocr" / f"{name}.json", {**header, "entries": []})
        for image in shard.images:
            results.write_record("ocr", image.id, {"status": "ok"})
    present = results.manifest_names("ocr")

    outlook = survey(results, old_plan, shards, present, results.record_ids("ocr"))
    assert (outlook.up_to_date, outlook.to_make, dict(outlook.reasons)) == (6, [], {})

    (tmp_path / "ocr" / f"{shards[0].images[0].id}.json").unlink()
    outlook = survey(results, old_plan, shards, present, results.record_ids("ocr"))
    assert outlook.repair == [shards[0]] and outlook.up_to_date == 4

    new_identity = {"engine": {"name": "rapidocr", "params": {"text_score": 0.7}}}
    new_plan = manifest_names("ocr", new_identity, shards, None)
    outlook = survey(results, new_plan, shards, present, results.record_ids("ocr"))
    assert len(outlook.to_make) == 3
    assert dict(outlook.reasons) == {"records made with text_score 0.5, now 0.7": 6}
    assert "3 of 3 jobs to run (6 records made with text_score 0.5, now 0.7" in outlook.line("OCR")
    more = form_shards(
        images([f"{n}.jpg" for n in range(8)]), shards, {s.name for s in shards}, 2, 1
    )
    more_plan = manifest_names("ocr", IDENTITY, more, None)
    outlook = survey(results, more_plan, more, present, results.record_ids("ocr"))
    assert dict(outlook.reasons) == {
        "new images": 2,
        "records in shards where some were deleted": 2,
    }


def test_manifest_header_is_json():
    shard = form_shards(images(["a.jpg"]), [], set(), 8, 1)[0]
    assert json.loads(json.dumps(manifest_header("kie", IDENTITY, shard)))["images"] == 1


def test_a_large_batch_makes_at_most_max_shards_shards_of_more_than_shard_size():
    pool = images(f"{n:05d}.jpg" for n in range(2500))
    shards = form_shards(pool, [], set(), 100, 2, max_shards=10)
    assert len(shards) == 10 and {len(s.images) for s in shards} == {250}
    assert len(form_shards(pool, [], set(), 100, 2, max_shards=0)) == 26  # no limit: 100 each
    assert len(form_shards(pool[:900], [], set(), 100, 2, max_shards=10)) == 10  # within it


def test_a_resumed_large_batch_keeps_its_finished_shards_and_its_shard_size():
    pool = images(f"{n:05d}.jpg" for n in range(2500))
    first = form_shards(pool, [], set(), 100, 2, max_shards=10)
    finished = {s.name for s in first[:4]}
    again = form_shards(pool, first, finished, 100, 2, max_shards=10)
    assert {k: v for k, v in members(again).items() if k in finished} == members(first[:4])
    assert max(len(s.images) for s in again) == 250  # the batch's size, not the rest's (100)
    assert sorted(i.id for s in again for i in s.images) == sorted(i.id for i in pool)
