"""The cascade's curve: threshold -> CPU time and word F1, beside the tiny and small models alone.

    python scripts/bench/cascade.py DATA [--count 60] [--thresholds 0 0.9 0.95 0.97 0.99 1]

One process of one thread, the engine's own code (``ocr_backend: faster_paddle``). Each page
is read once by the small model alone and once by the tiny model; then every line the tiny
model found is read again by the small recogniser, each line on its own clock. A threshold's
reading is the tiny model's, with the lines below the threshold replaced by their second
reading, as ``faster_paddle.model: cascade`` reads; its CPU time is the tiny model's plus the
second readings of those lines. CPU time (``time.process_time``, model loads and one warm-up
page excluded) is steadier than the wall clock on a shared machine. It prints CPU seconds per
image and their ratio to the small model alone, the share of lines read again, word F1 and
CER (``ocrkie.evaluate``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from common import SROIE_HELP

from ocrkie.engines.faster_paddle import FasterPaddleEngine, _cut, _encoded, _lines
from ocrkie.evaluate import evaluate, page_text
from ocrkie.images import PageImage, load_page
from ocrkie.page import Line, split_words


def clocked(read: Any, *args: Any) -> tuple[Any, float]:
    started = time.process_time()
    result = read(*args)
    return result, time.process_time() - started


def measure(pages: list[PageImage]) -> list[dict[str, Any]]:
    """Per page: the small model's lines and CPU time, the tiny model's, and each tiny line's
    second reading with its CPU time."""
    small = FasterPaddleEngine(threads=1, model="small")
    cascade = FasterPaddleEngine(threads=1, model="cascade", reread_below=1.0)
    small.recognize(pages[0])
    cascade.recognize(pages[0])  # loads both of its models
    measured = []
    for page in pages:
        small_lines, small_cpu = clocked(lambda p: small.recognize(p).lines, page)
        found, tiny_cpu = clocked(lambda p: cascade._read([_encoded(p)])[0], page)
        tiny = _lines(found, page, "tiny")
        again = []
        for line in tiny:
            (reading,), cpu = clocked(cascade._recognize, [_cut(page, line.polygon)])
            again.append((*reading, cpu))
        measured.append(
            {"small": (small_lines, small_cpu), "tiny": (tiny, tiny_cpu), "again": again}
        )
    return measured


def at_threshold(page: dict[str, Any], threshold: float) -> tuple[list[Line], float, int]:
    """The cascade's lines at ``threshold``, its CPU time and how many lines it read again."""
    tiny, cpu = page["tiny"]
    lines, rereads = [], 0
    for line, (text, confidence, seconds) in zip(tiny, page["again"], strict=True):
        if line.confidence < threshold:
            rereads += 1
            cpu += seconds
            if text.strip():
                words = split_words(text, line.polygon, confidence)
                line = Line(text, confidence, line.polygon, words, model="small")
        if line.confidence >= 0.5:  # faster_paddle.text_score
            lines.append(line)
    return lines, cpu, rereads


def score(texts: dict[str, str], truth: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "ocr").mkdir()
        for name, text in texts.items():
            record = {"image": {"path": name}, "status": "ok", "text": text}
            (Path(folder) / "ocr" / f"{Path(name).stem}.json").write_text(json.dumps(record))
        return evaluate(Path(folder), truth)


ROW = "{:<22} {:>9} {:>6} {:>10} {:>8} {:>7}"


def row(name: str, cpu: float, ratio: float, share: str, found: dict[str, Any]) -> str:
    cer = f"{found['cer']:.2%}"
    return ROW.format(name, f"{cpu:.3f}", f"{ratio:.3f}", share, f"{found['word_f1']:.3f}", cer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help=SROIE_HELP)
    parser.add_argument("--count", type=int, default=60)
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0, 0.9, 0.95, 0.97, 0.99, 1]
    )
    args = parser.parse_args()
    paths = sorted(p for p in (args.data / "img").iterdir() if p.is_file())[: args.count]
    pages = [load_page(str(p), max_pixels=178956970, max_side=4096) for p in paths]
    measured = measure(pages)
    n = len(pages)
    small_cpu = sum(page["small"][1] for page in measured) / n
    small = score(
        {p.name: page_text(m["small"][0]) for p, m in zip(paths, measured, strict=True)},
        args.data,
    )
    print(f"{n} images of {args.data}, 1 process x 1 thread")
    print(ROW.format("reading", "CPU s/img", "ratio", "read again", "word F1", "CER"))
    print(row("small alone", small_cpu, 1.0, "-", small))
    lines_found = sum(len(m["tiny"][0]) for m in measured)
    for threshold in args.thresholds:
        texts, cpu, rereads = {}, 0.0, 0
        for path, page in zip(paths, measured, strict=True):
            lines, seconds, again = at_threshold(page, threshold)
            texts[path.name] = page_text(lines)
            cpu, rereads = cpu + seconds, rereads + again
        found = score(texts, args.data)
        name = "tiny alone" if threshold == 0 else f"cascade below {threshold:g}"
        share = f"{rereads / max(1, lines_found):.0%}"
        print(row(name, cpu / n, small_cpu / (cpu / n), share, found))


if __name__ == "__main__":
    main()
