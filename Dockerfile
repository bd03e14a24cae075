# The backend image: the API (`uvicorn autopack.main:app`) and the `autopack` command, which the
# compose file's one-shot `migrate` service runs (`autopack db upgrade`). The dashboard has an
# image of its own (Dockerfile.frontend, served by nginx with nginx.conf).
#
#   docker build --target backend -t autopack-backend .
#
# tests/deploy/test_backend_image.py rebuilds this stage outside Docker (the .dockerignore'd
# context, the COPY lines, a fresh virtualenv from requirements.txt) and runs what it runs.

# A patch-pinned tag on a named Debian release: every build gets the same interpreter and system
# libraries until this line changes.
FROM python:3.11.13-slim-bookworm AS backend

WORKDIR /app

# PYTHONDONTWRITEBYTECODE: no .pyc files at run time (the sources are read-only to the app's user).
# PYTHONUNBUFFERED: log lines reach `docker logs` as they are written.
# PYTHONPATH: the sources are imported from /app/src; the project is not pip-installed (below).
# AUTOPACK_RUNS_DIR: workspaces and run artifacts, the `runs` volume in docker-compose.yml.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app/src \
    AUTOPACK_RUNS_DIR=/app/.autonomous_runs

# git: the executor clones each run's project and commits every phase with it; the slim image has
# none. (HTTPS remotes use the image's ca-certificates; no recommends, no ssh client.)
RUN apt-get update \
    && apt-get install --yes --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# An unprivileged user runs the app. It owns only the runs directory: a named volume mounted
# there starts as a copy of this directory, ownership included, so the user can write to it.
RUN groupadd --system --gid 10001 autopack \
    && useradd --system --uid 10001 --gid autopack --create-home --home-dir /home/autopack \
        --shell /usr/sbin/nologin autopack \
    && mkdir -p /app/.autonomous_runs \
    && chown autopack:autopack /app/.autonomous_runs

# `autopack` on PATH for this image's other roles (`autopack db upgrade`, `autopack keys create`
# through `docker compose exec backend ...`). Without a pip-installed project there is no console
# script, so this wrapper runs the same Typer app as `python -m autopack`.
RUN printf '#!/bin/sh\nexec python -m autopack "$@"\n' > /usr/local/bin/autopack \
    && chmod 0755 /usr/local/bin/autopack

# The pinned runtime dependencies (generated from pyproject.toml) alone first: this layer is
# rebuilt when requirements.txt changes, not on every change to the sources.
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check -r /app/requirements.txt

# The application package, with its migrations and data files. The project itself is not
# pip-installed: pyproject.toml's readme (README.md) is kept out of the build context by
# .dockerignore, and PYTHONPATH makes the package importable. Only src/autopack: the dashboard's
# sources (src/frontend) belong to the frontend image.
COPY src/autopack /app/src/autopack

EXPOSE 8000

# Python, not curl: the slim image has neither curl nor wget. /health is 200 only while the
# database answers (503 otherwise), and urlopen raises on anything but 2xx, so that exits 1 too.
HEALTHCHECK --interval=10s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status == 200 else 1)"]

USER autopack

# The API on every interface of the container. Not `autopack serve`: its refusal to serve a public
# address without API keys does not apply here, so docker-compose.yml requires AUTOPACK_API_KEY.
# The schema must be migrated first (the `migrate` service): the app refuses to start otherwise.
CMD ["uvicorn", "autopack.main:app", "--host", "0.0.0.0", "--port", "8000"]
