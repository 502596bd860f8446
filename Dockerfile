# syntax=docker/dockerfile:1
#
# One image for both Keel processes:
#   keel api     - the FastAPI server (default command, port 8000)
#   keel worker  - the Temporal worker
# Build:  docker build -t keel .
# Run:    docker run -p 8000:8000 keel          (api)
#         docker run keel keel worker            (worker)

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build stage: install the project and its dependencies into a venv ----
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# .dockerignore keeps the venv, caches, VCS data and bench results out of the context.
COPY . .
RUN pip install --upgrade pip \
    && pip install . \
    && keel --help >/dev/null

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
