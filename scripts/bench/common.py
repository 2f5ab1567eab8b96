"""What the benchmarks share: where the repository is, and the data they read."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "resources" / "samples" / "img"
SROIE_HELP = (
    "a folder in the SROIE 2019 layout (img/, box/, key/); docs/benchmarks.md says where to get it"
)
