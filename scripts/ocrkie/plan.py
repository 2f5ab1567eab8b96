"""The plan: which images a run holds, in which shards, and what each stage must (re)do.

It is made once per run, when the submitting Snakemake parses the workflow, and written to
``<results>/plan/plan.json.gz`` by a run that executes jobs (``planner.write_plan``; a dry
run writes nothing); the shard jobs (on AWS Batch too) read their images from it and
discover nothing themselves.

Shards are sticky: a shard that has a manifest keeps its images, so adding images forms new
shards of the new images only, and changing ``cores`` or ``shard_size`` reruns nothing. New
images are split evenly into shards of at most ``shard_size``, at least one per job slot,
so that no core idles at the end of a small batch. A batch larger than ``shard_size`` times
``max_shards`` gets larger shards (``grown_shard_size``): Snakemake plans a few thousand
jobs in seconds, but tens of thousands in minutes.

Each stage's manifest is named by a digest of everything its records depend on: the shard's
images (path, size, mtime), the engine's identity and parameters, the image limits, and for
KIE the OCR manifest it read. Change any of them and the expected name changes, so Snakemake
sees a missing output and reruns exactly those jobs, in a dry run too. A manifest whose
records were deleted since is superseded the same way (its ``generation`` goes up).
"""

from __future__ import annotations

import gzip
import heapq
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .formats import digest
from .inputs import InputImage
from .results import Results

PLAN_FORMAT = "ocrkie.plan/1"
PLAN_FILE = "plan/plan.json.gz"
SHARD_PATTERN = r"shard_[0-9a-f]{8}"
DIGEST_PATTERN = r"[0-9a-f]{8}"


@dataclass(frozen=True)
class Shard:
    name: str
    images: tuple[InputImage, ...]
    generation: dict[str, int] = field(default_factory=dict, compare=False, hash=False)

    def fingerprint(self) -> str:
        return digest([image.fingerprint() for image in self.images])


# -- forming shards ---------------------------------------------------------------------------


def form_shards(
    images: Sequence[InputImage],
    previous: Sequence[Shard],
    started: set[str],
    shard_size: int,
    slots: int,
    max_shards: int | None = None,
) -> list[Shard]:
    """Keep the ``started`` shards of the previous plan (those with a manifest) with the
    images still present; split the other images into new shards, of a size that the whole
    batch sets (``grown_shard_size``), so that a resumed run forms them the same size."""
    size = grown_shard_size(len(images), shard_size, max_shards)
    by_id = {image.id: image for image in images}
    kept = []
    for shard in previous:
        members = tuple(by_id[i.id] for i in shard.images if i.id in by_id)
        if shard.name in started and members:
            kept.append(Shard(shard.name, members, dict(shard.generation)))
    taken = {image.id for shard in kept for image in shard.images}
    pool = sorted((i for i in images if i.id not in taken), key=lambda i: i.id)
    shards = kept + [_new_shard(group) for group in split_evenly(pool, size, slots)]
    return sorted(shards, key=lambda s: s.images[0].id)


def grown_shard_size(images: int, shard_size: int, max_shards: int | None) -> int:
    """``shard_size``, or more where a batch of ``images`` would make more than ``max_shards``
    shards of it (a million images, 100 and 1,000: shards of 1,000)."""
    if not max_shards:
        return shard_size
    return max(shard_size, math.ceil(images / max_shards))


def split_evenly(
    images: Sequence[InputImage], shard_size: int, slots: int
) -> list[list[InputImage]]:
    """Shards of at most ``shard_size`` images, as many as a multiple of ``slots`` (so that
    the last round of jobs leaves no slot idle), holding about equal work: the largest
    files first, each to the shard with the fewest bytes so far (file size stands in for the
    engine's time, which is not known before it runs)."""
    if not images:
        return []
    rounds = math.ceil(math.ceil(len(images) / shard_size) / slots)
    count = min(len(images), rounds * slots)
    known = [i.size for i in images if i.size > 0]
    typical = sum(known) / len(known) if known else 1
    heap = [(0.0, k) for k in range(count)]  # (bytes so far, shard index)
    shards: list[list[InputImage]] = [[] for _ in range(count)]
    for image in sorted(images, key=lambda i: (-(i.size if i.size > 0 else typical), i.id)):
        load, k = heapq.heappop(heap)
        shards[k].append(image)
        if len(shards[k]) < shard_size:
            heapq.heappush(heap, (load + (image.size if image.size > 0 else typical), k))
    return [sorted(shard, key=lambda i: i.id) for shard in shards]


def _new_shard(images: Sequence[InputImage]) -> Shard:
    name = f"shard_{digest([image.id for image in images], 8)}"
    return Shard(name, tuple(images))


def job_slots(
    threads: int,
    requests: dict[str, int],
    limits: dict[str, Any],
    remote_jobs: int | None,
) -> int:
    """How many jobs of a stage can run at once: remote jobs each have a machine; otherwise the
    cores, every capped resource the jobs request (a GPU, an API slot) and ``--jobs`` bound it.
    On a cluster (SLURM) ``--cores`` caps the cores of all jobs together, and without it (a
    remote executor needs none; a dry run counts 1) only the other bounds hold."""
    if remote_jobs:
        return remote_jobs
    cores, nodes = limits.get("_cores"), limits.get("_nodes")
    slots = [cores // threads] if threads and isinstance(cores, int) else []  # API: no core
    for name, amount in requests.items():
        limit = limits.get(name)
        if amount and isinstance(limit, int):
            slots.append(limit // amount)
    if isinstance(nodes, int):
        slots.append(nodes)
    return max(1, min(slots, default=cores or 1))


# -- the plan file ----------------------------------------------------------------------------


def encode_plan(
    shards: Sequence[Shard], source: str, skipped: Sequence[tuple[str, str]] = ()
) -> bytes:
    """The plan file: gzipped JSON, the same bytes for the same plan. Written a shard at a
    time, so that a million images never sit in memory as one JSON text."""
    head = {
        "format": PLAN_FORMAT,
        "source": source,
        "images": sum(len(s.images) for s in shards),
        "skipped": [list(entry) for entry in skipped],  # (path, reason): not images
    }
    packer = zlib.compressobj(6, wbits=31)  # gzip, no time stamp: gzip.compress(mtime=0)
    packed = [packer.compress(_json(head)[:-1].encode("utf-8") + b',"shards":[')]
    for n, shard in enumerate(shards):
        document = {
            "name": shard.name,
            "generation": shard.generation,
            "images": [[i.id, i.path, i.relpath, i.size, i.mtime] for i in shard.images],
        }
        packed.append(packer.compress((b"," if n else b"") + _json(document).encode("utf-8")))
    packed += [packer.compress(b"]}"), packer.flush()]
    return b"".join(packed)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def decode_plan(data: bytes) -> list[Shard]:
    document = json.loads(gzip.decompress(data))
    if document.get("format") != PLAN_FORMAT:
        raise ValueError(f"not an ocrkie plan ({document.get('format')!r})")
    return [
        Shard(s["name"], tuple(InputImage(*image) for image in s["images"]), s["generation"])
        for s in document["shards"]
    ]


def read_skipped(plan_file: str) -> list[tuple[str, str]]:
    with open(plan_file, "rb") as handle:
        return [tuple(entry) for entry in json.loads(gzip.decompress(handle.read()))["skipped"]]


def read_shard(plan_file: str, name: str) -> Shard:
    """One shard of a plan file (what a shard job reads)."""
    with open(plan_file, "rb") as handle:
        shards = decode_plan(handle.read())
    for shard in shards:
        if shard.name == name:
            return shard
    raise LookupError(f"{name} is not in the plan {plan_file}: was the plan rewritten meanwhile?")


# -- what each stage must do ------------------------------------------------------------------


@dataclass(frozen=True)
class StagePlan:
    """One stage across the shards: its identity and each shard's expected manifest."""

    stage: str
    identity: dict[str, Any]
    manifests: dict[str, str]  # shard name -> expected manifest name


def manifest_names(
    stage: str, identity: dict[str, Any], shards: Sequence[Shard], upstream: StagePlan | None
) -> StagePlan:
    """``<shard>-<digest>`` (OCR, layout) or ``<OCR manifest>-<digest>`` (KIE)."""
    names = {}
    for shard in shards:
        generation = shard.generation.get(stage, 0)
        if upstream is None:
            names[shard.name] = (
                f"{shard.name}-{digest([identity, shard.fingerprint(), generation], 8)}"
            )
        else:
            base = upstream.manifests[shard.name]
            names[shard.name] = f"{base}-{digest([identity, base, generation], 8)}"
    return StagePlan(stage, identity, names)


def manifest_header(stage: str, identity: dict[str, Any], shard: Shard) -> dict[str, Any]:
    """What a manifest records of how its records were made (to explain a rerun later)."""
    return {
        "stage": stage,
        "shard": shard.name,
        "identity": identity,
        "images": len(shard.images),
        "fingerprint": shard.fingerprint(),
        "generation": shard.generation.get(stage, 0),
    }


@dataclass
class Outlook:
    """What a stage will do in this run: records up to date, and why the others are made."""

    stage: str
    shards: int = 0
    up_to_date: int = 0  # images
    reasons: Counter[str] = field(default_factory=Counter)  # "records made with ..." -> images
    to_make: list[Shard] = field(default_factory=list)  # the shards whose job runs
    repair: list[Shard] = field(default_factory=list)  # of those, the ones with records deleted

    def line(self, label: str) -> str:
        parts = [f"{n} {reason}" for reason, n in self.reasons.most_common()]
        parts.append(f"{self.up_to_date} records up to date")
        return f"{label}: {len(self.to_make)} of {self.shards} jobs to run ({'; '.join(parts)})"


def survey(
    results: Results,
    stage_plan: StagePlan,
    shards: Sequence[Shard],
    present: set[str],
    records: set[str] | None,
    retry: set[str] = frozenset(),  # type: ignore[assignment]
) -> Outlook:
    """Compare the expected manifests with those present. One that is present but whose
    records (the image ids in ``records``, when given) were deleted since, or that is marked
    as having images to try again (``retry``: a transient fault), goes to ``repair``; a
    missing one is explained from the shard's previous manifest, if any."""
    stage = stage_plan.stage
    outlook = Outlook(stage, shards=len(shards))
    previous: dict[str, list[str]] = {}
    for name in present:
        previous.setdefault(name.split("-", 1)[0], []).append(name)
    stale = []
    for shard in shards:
        count = len(shard.images)
        if stage_plan.manifests[shard.name] not in present:
            outlook.to_make.append(shard)
            if shard.name in previous:
                stale.append((shard, max(previous[shard.name])))
            else:
                outlook.reasons["new images"] += count
        elif stage_plan.manifests[shard.name] in retry:
            outlook.to_make.append(shard)
            outlook.repair.append(shard)
            outlook.reasons["records in shards where some failed on a transient fault"] += count
        elif records is not None and any(image.id not in records for image in shard.images):
            outlook.to_make.append(shard)
            outlook.repair.append(shard)
            outlook.reasons["records in shards where some were deleted"] += count
        else:
            outlook.up_to_date += count
    for reason, count in _explain(results, stage_plan, stale):
        outlook.reasons[reason] += count
    return outlook


def _explain(
    results: Results, stage_plan: StagePlan, stale: list[tuple[Shard, str]]
) -> Iterable[tuple[str, int]]:
    """Why each stale shard reruns, from the manifest it had."""

    def read(item: tuple[Shard, str]) -> tuple[Shard, dict[str, Any] | None]:
        shard, name = item
        try:
            return shard, results.read_manifest(stage_plan.stage, name)
        except (OSError, ValueError):
            return shard, None

    with ThreadPoolExecutor(max_workers=16) as pool:
        for shard, old in pool.map(read, stale):
            yield _reason(stage_plan.identity, shard, old), len(shard.images)


def _reason(identity: dict[str, Any], shard: Shard, old: dict[str, Any] | None) -> str:
    if old is None:
        return "records in shards whose manifest cannot be read"
    changes = describe_changes(old.get("identity", {}), identity)
    if changes:
        return f"records made with {changes}"
    if old.get("fingerprint") != shard.fingerprint():
        return "records in shards whose images changed"
    if old.get("generation") != shard.generation.get(old.get("stage", ""), 0):
        return "records in shards where some were deleted"
    return "records made from other OCR records"


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``text_score 0.5, now 0.7; max_side 4096, now 2048``: the settings that differ. Another
    engine altogether reads ``rapidocr, now upstage-ocr``, without its every parameter."""
    return "; ".join(
        f"{_show(before)}, now {_show(after)}"
        if key.endswith("name")
        else f"{key.rsplit('.', 1)[-1]} {_show(before)}, now {_show(after)}"
        for key, before, after in _differences(old, new, "")
    )


def _differences(old: Any, new: Any, key: str) -> list[tuple[str, Any, Any]]:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [(key, old, new)]
    if old.get("name") != new.get("name"):
        return [(f"{key}.name", old.get("name"), new.get("name"))]
    found = []
    for name in sorted(old.keys() | new.keys(), key=list({**old, **new}).index):
        found += _differences(old.get(name), new.get(name), f"{key}.{name}" if key else name)
    return found


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = str(value)
    return text if len(text) <= 32 else f"{text[:12]}…"  # a digest: its start tells it apart
