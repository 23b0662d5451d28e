# One image, three entry points, chosen by the command (there is no ENTRYPOINT, so the command
# given replaces the default whole): the scoring consumer (the default, `shopper-consumer`), the
# HTTP front door (`python -m serve`, port SERVE_PORT 8080) and the training job
# (`shopper-train --data ... --out ...`). Kubernetes sets `command:` per workload; by hand:
#   docker run IMAGE                    # the consumer
#   docker run -p 8080:8080 IMAGE python -m serve
# Neither the dataset nor a model is inside: the consumer and the front door read the build named
# by MODEL_URI (from a registry volume, or downloaded from object storage for an s3:// URI), and
# training reads the dataset and writes a new build there (a mounted volume, or s3://).
#
#   docker build -t shopper-intent:$(git rev-parse --short HEAD) \
#       --build-arg GIT_SHA=$(git rev-parse HEAD) .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: resolve nothing, install exactly uv.lock into /opt/venv ---------------------
FROM ${PYTHON_IMAGE} AS builder

# Same pin as the Makefile's UV_VERSION (a unit test keeps them equal).
ARG UV_VERSION=0.13.8
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /src
# Dependencies first, in their own layer: code edits do not reinstall them. The CUDA collective
# library that xgboost pulls in on Linux is left out: this image serves and trains on CPU.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --no-install-package nvidia-nccl-cu12

COPY contract/ contract/
COPY training/ training/
COPY scoring/ scoring/
COPY consumer/ consumer/
COPY serve/ serve/
COPY quality/ quality/
# --no-editable installs the project into the venv itself, so the runtime stage needs no /src.
RUN uv sync --frozen --no-dev --no-editable --no-install-package nvidia-nccl-cu12

# ---- runtime: the venv on a clean slim base, as a non-root user ----------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG GIT_SHA=unknown
# training records it in manifest.json (the image has no .git)
ENV GIT_SHA=${GIT_SHA}
LABEL org.opencontainers.image.title="shopper-intent" \
      org.opencontainers.image.description="Purchase-intent scoring consumer, HTTP front door and training job" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.revision="${GIT_SHA}"

RUN groupadd --system --gid 10001 scorer \
    && useradd --system --uid 10001 --gid scorer --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin scorer

COPY --from=builder /opt/venv /opt/venv

# MPLCONFIGDIR: training renders report plots; the root filesystem is read-only in Kubernetes
# and /tmp is an emptyDir there.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp/matplotlib

USER 10001:10001
# The consumer's /metrics, /healthz and /readyz (METRICS_PORT); the front door's API, probes and
# /metrics (SERVE_PORT).
EXPOSE 9400 8080
CMD ["shopper-consumer"]
