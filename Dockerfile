# syntax=docker/dockerfile:1
# One image for every xerosync service: `docker run xerosync syncer`, `... migrate`, ...
# Built by docker-compose.yml; `docker build -t xerosync .` works on its own too.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---------------------------------------------------------------- build
# Installs xerosync and its pinned dependencies (no dev extras) into a virtualenv that the
# runtime stage copies whole; pip, build caches and sources stay behind in this stage.
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# README.m[d]: pyproject.toml names README.md as the long description; the glob lets the
# build go on (with a setuptools warning) where it is absent.
COPY pyproject.toml constraints.txt README.m[d] ./
COPY xerosync ./xerosync
COPY shared ./shared
COPY services ./services
# The Xero sandbox, for compose's stand-in Xero; production never starts it.
COPY xero_sandbox ./xero_sandbox
RUN pip install --no-cache-dir -c constraints.txt . \
    && xerosync --help > /dev/null

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 xerosync \
    && useradd --system --uid 10001 --gid xerosync --create-home --home-dir /home/xerosync \
        --shell /usr/sbin/nologin xerosync

COPY --from=build /opt/venv /opt/venv

WORKDIR /home/xerosync
USER xerosync:xerosync

# connector, scheduler, syncer (each serves /healthz, /readyz and /metrics)
EXPOSE 8000 8001 8002

ENTRYPOINT ["xerosync"]
CMD ["--help"]
