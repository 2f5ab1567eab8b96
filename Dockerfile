# syntax=docker/dockerfile:1
# The container image for running ocrkie on AWS Batch (profiles/aws-batch, see docs/aws-batch.md).
#
#   docker build -t ocrkie:0.1.0 .
#
# Snakemake's aws-batch executor starts every job as
#   /bin/bash -c "pip install --target '.snakemake/pip-deployments' snakemake-storage-plugin-s3
#                 && python -m snakemake --deploy-sources s3://... && python -m snakemake ..."
# in the image's working directory. So: no ENTRYPOINT in the way, the venv's `pip` and `python`
# first on PATH, a writable working directory, and that pip install answered from a local
# wheel (offline, about a second) instead of PyPI (~40 MB per job, and needs internet).

# CUDA 13 + cuDNN 9: what torch 2.13.0 and onnxruntime-gpu 1.31.1 are built for. Needs an
# NVIDIA driver >= 580 on the host (current ECS GPU-optimised AMIs). NVIDIA retires old tags;
# any current 13.x "cudnn-runtime" tag will do.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04
FROM ghcr.io/astral-sh/uv:0.13.8 AS uv
FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=uv /uv /usr/local/bin/uv

# Python 3.11 in a venv that carries pip (the job command calls `pip`).
RUN uv venv --seed --python 3.11 /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# torch first and pinned by version (as in the Makefile), then the locked runtime with the GPU
# build of onnxruntime, every file checked against the lock's hashes. snakemake 9.27.1 and both
# plugins (aws-batch 0.2.1, s3 0.3.6) come from the lock. That step is pip's: uv's
# --require-hashes also wants a hash for torch, installed already.
COPY envs/requirements-gpu.txt /tmp/requirements-gpu.txt
RUN grep -q '^onnxruntime-gpu==1.31.1 ' /tmp/requirements-gpu.txt \
    && grep -q '^snakemake==9.27.1 ' /tmp/requirements-gpu.txt \
    && grep -q '^snakemake-executor-plugin-aws-batch==0.2.1 ' /tmp/requirements-gpu.txt \
    && grep -q '^snakemake-storage-plugin-s3==0.3.6 ' /tmp/requirements-gpu.txt \
    && uv pip install torch==2.13.0 \
    && pip install --no-cache-dir --require-hashes -r /tmp/requirements-gpu.txt \
    && python -c "import onnxruntime, torch, torchvision, easyocr, kraken, transformers, snakemake_storage_plugin_s3"

# The wheel that answers the job's `pip install --target ... snakemake-storage-plugin-s3`,
# checked against its hash in the lock.
RUN awk '/^snakemake-storage-plugin-s3==/,!/\\$/' /tmp/requirements-gpu.txt > /tmp/s3-plugin.txt \
    && pip download --no-cache-dir --no-deps --require-hashes --dest /opt/ocrkie/wheels \
        -r /tmp/s3-plugin.txt

# The project's package, for its console scripts and as a fallback: at run time jobs import
# the workflow sources deployed with the run first (PYTHONPATH), so code changes need no
# rebuild; dependency changes do. --no-deps: its dependencies are installed above, with
# onnxruntime-gpu standing in for onnxruntime.
COPY pyproject.toml /opt/ocrkie/src/pyproject.toml
COPY scripts/ocrkie /opt/ocrkie/src/scripts/ocrkie
RUN uv pip install --no-deps /opt/ocrkie/src

# From here on pip never reaches an index: only the wheel above, without dependencies.
# UPSTAGE_API_KEY_SSM_PARAMETER names where the Upstage key is read from (not the key itself).
ENV PIP_NO_INDEX=1 \
    PIP_NO_DEPS=1 \
    PIP_FIND_LINKS=/opt/ocrkie/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UPSTAGE_API_KEY_SSM_PARAMETER=/ocrkie/upstage-api-key \
    PYTHONPATH=/workflow/scripts

WORKDIR /workflow
# The nvidia/cuda base sets an ENTRYPOINT that prints a banner; Batch passes the full command.
ENTRYPOINT []
CMD ["/bin/bash"]
