# Two entry points on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
# An NVIDIA GPU that answers nvidia-smi gets the GPU builds (`make GPU=` forces CPU only).
GPU ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo yes)
STAMP := $(VENV)/.installed-$(if $(GPU),gpu,cpu)

.PHONY: venv demo test test-slurm lint format samples lock bench bench-gpu clean profiles gpu-runtime

# torch goes in first, pinned, so nothing later pulls another build of it; every other package
# must match a hash in the lock files. With a GPU, onnxruntime-gpu (hashed, from
# envs/requirements-gpu.txt) replaces onnxruntime, and torch is PyPI's Linux build, with CUDA.
$(STAMP): envs/requirements.txt envs/requirements-dev.txt envs/requirements-gpu.txt pyproject.toml
	python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), "needs Python 3.11"'
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet --require-hashes -r envs/requirements-dev.txt
	$(if $(GPU),$(MAKE) --no-print-directory gpu-runtime)
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# onnxruntime-gpu for onnxruntime, checked against the lock file's hashes; a CPU build of torch
# (from an earlier CPU set-up) is replaced by the index's Linux build, which has CUDA.
gpu-runtime:
	$(PY) -c 'import sys, torch; sys.exit(not torch.version.cuda)' \
	|| ($(PY) -m pip install --quiet --force-reinstall --no-deps torch==2.13.0 \
	&& $(PY) -m pip install --quiet torch==2.13.0)
	awk '/^onnxruntime-gpu==/,!/\\$$/' envs/requirements-gpu.txt > $(VENV)/onnxruntime-gpu.txt
	$(PY) -m pip uninstall --quiet -y onnxruntime
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(VENV)/onnxruntime-gpu.txt
	$(PY) -c 'import onnxruntime, torch; print("GPU builds:", "onnxruntime", onnxruntime.get_available_providers()[0], "/ torch sees", torch.cuda.device_count(), "GPU(s)")'

# `snakemake --profile local-gpu`, `--profile aws-batch` and `--profile slurm` by name, from any folder: links
# to this clone's profiles in Snakemake's profile folder (~/.config/snakemake on Linux,
# $$XDG_CONFIG_HOME/snakemake where that is set). A profile of that name that is not a link
# is left alone.
profiles:  ## after the set-up (it asks the installed Snakemake where its profile folder is)
	@folder=$$($(PY) -c 'from snakemake.common import get_appdirs; print(get_appdirs().user_config_dir)') \
	&& mkdir -p "$$folder" && for name in local-gpu aws-batch slurm; do \
	  if [ -e "$$folder/$$name" ] && [ ! -L "$$folder/$$name" ]; then \
	    echo "$$folder/$$name exists and is not a link: left as it is"; \
	  else ln -sfn "$(CURDIR)/profiles/$$name" "$$folder/$$name" \
	    && echo "--profile $$name: $$folder/$$name -> $(CURDIR)/profiles/$$name"; fi; done

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

# The local engines on this machine's GPU, offline (the bundled samples, or IMAGES=a folder in
# the SROIE layout): images/s, GPU busy %, word F1 and the line batch of each, side by side
# with the local engine reading one line at a time (docs/engines-speed.md).
IMAGES ?= resources/samples
bench-gpu: $(STAMP)  ## GPU benchmark of the local engines
	$(PY) scripts/bench/engines.py --images $(IMAGES) --engines rapidocr:rapidocr.batch_size=1 rapidocr easyocr

clean:
	rm -rf results .snakemake
