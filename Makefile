# Two entry points on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint format samples lock bench bench-gpu clean

# torch goes in first, pinned, so nothing later pulls a CUDA build of it; every other package
# must match a hash in the lock files.
$(STAMP): envs/requirements.txt envs/requirements-dev.txt pyproject.toml
	python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), "needs Python 3.11"'
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --require-hashes -r envs/requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

DEMO := --profile profiles/local-gpu --configfile config/config.yaml config/demo.yaml
BROWSER := /usr/bin/chromedriver

demo: $(STAMP)  ## OCR + KIE of the bundled samples with the local engine, every output on
	$(VENV)/bin/snakemake $(DEMO)
	$(VENV)/bin/snakemake $(DEMO) --report results/report.html
	$(PY) scripts/tools/evaluate.py results resources/samples

test: $(STAMP) $(BROWSER) lint  ## lint, then the whole test suite
	$(PY) -m pytest -n 2 --dist loadgroup

# Debian's chromium and its driver, for the test that opens the report in a real browser.
$(BROWSER):
	apt-get update -q && apt-get install -y -q chromium chromium-driver

lint: $(STAMP)
	$(VENV)/bin/ruff check scripts tests workflow/scripts
	$(VENV)/bin/ruff format --check scripts tests workflow/scripts
	$(VENV)/bin/snakefmt --check workflow

format: $(STAMP)
	$(VENV)/bin/ruff check --fix scripts tests workflow/scripts
	$(VENV)/bin/ruff format scripts tests workflow/scripts
	$(VENV)/bin/snakefmt workflow

samples: $(STAMP)  ## re-render resources/samples
	$(PY) scripts/tools/make_samples.py resources/samples

lock:  ## re-pin envs/*.txt from clean environments, with hashes (slow: see README.md)
	scripts/tools/lock.sh

bench: $(STAMP)
	$(PY) scripts/bench/local.py

# The local engines on this machine's GPU, offline (the bundled samples, or IMAGES=a folder in
# the SROIE layout): images/s, GPU busy %, word F1 and the line batch of each, side by side
# with the local engine reading one line at a time (docs/engines-speed.md).
IMAGES ?= resources/samples
bench-gpu: $(STAMP)  ## GPU benchmark of the local engines
	$(PY) scripts/bench/engines.py --images $(IMAGES) --engines local:local.batch_size=1 local easyocr

clean:
	rm -rf results .snakemake
