# Two entry points on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv demo test test-slurm lint format samples lock bench clean

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
SLURM := /usr/sbin/slurmctld

venv: $(STAMP)  ## only the virtual environment (e.g. on a cluster's login node)

demo: $(STAMP)  ## OCR + KIE of the bundled samples with the local engine, every output on
	$(VENV)/bin/snakemake $(DEMO)
	$(VENV)/bin/snakemake $(DEMO) --report results/report.html
	$(PY) scripts/tools/evaluate.py results resources/samples

test: $(STAMP) $(BROWSER) $(SLURM) lint  ## lint, then the whole test suite
	$(PY) -m pytest -n 2 --dist loadgroup

# Debian packages: with apt-get as root, through sudo otherwise, or one line saying what to install.
define apt_install
	@if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "make: installing $(1) needs root or sudo: install them, then run make again" >&2; exit 1; fi; \
	command -v apt-get >/dev/null || { echo "make: no apt-get here: install $(1), then run make again" >&2; exit 1; }; \
	$$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1) \
	|| { echo "make: apt-get could not install $(1): install them, then run make again" >&2; exit 1; }
endef

test-slurm: $(STAMP) $(SLURM)  ## the SLURM profile on a one-node cluster of its own (root)
	$(PY) -m pytest tests/test_slurm.py

# Debian's chromium and its driver, for the test that opens the report in a real browser.
$(BROWSER):
	$(call apt_install,chromium chromium-driver)

# Debian's SLURM (controller, node daemon, accounting on MariaDB, munge), for the tests that
# start a one-node cluster of their own (tests/test_slurm.py). Nothing is configured here, and
# the tests stop every daemon they start.
$(SLURM):
	$(call apt_install,--no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server-core mariadb-client-core)

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

clean:
	rm -rf results .snakemake
