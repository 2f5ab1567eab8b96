"""Delete the records of the images that failed, so that the next run tries them again.

    python scripts/tools/forget_failures.py [results] [--stage ocr] [--class TransientError]

Reads ``<results>/failures.csv`` (any file name, newlines and quotes included) and deletes
each failed image's records of every stage (``ocr``, ``kie``, ``layout``, and their raw
answers); the next run rewrites them, taking whatever is in the content cache. Prints what
it deleted.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

STAGES = ("ocr", "kie", "layout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, nargs="?", default=Path("results"))
    parser.add_argument("--stage", help="only images that failed at this stage")
    parser.add_argument("--class", dest="kind", help="only failures of this class")
    args = parser.parse_args()
    with (args.results / "failures.csv").open(encoding="utf-8", newline="") as handle:
        rows = [
            row
            for row in csv.DictReader(handle)
            if (args.stage in (None, row["stage"])) and (args.kind in (None, row["class"]))
        ]
    images = sorted({row["image"] for row in rows})
    for image in images:
        for stage in STAGES:
            for folder in (args.results / stage, args.results / "raw" / stage):
                (folder / f"{image}.json").unlink(missing_ok=True)
                for page in folder.glob(f"{image}-p[0-9][0-9][0-9][0-9].json"):
                    page.unlink()  # the pages of a document of several
    print(f"forgot {len(images)} failed images: the next run tries them again")


if __name__ == "__main__":
    main()
