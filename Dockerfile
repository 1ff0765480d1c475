# releaselog: multi-stage image. The install and start steps are the ones CI and `make run` use:
# the pinned, hash-checked dependencies from a lock, then this project without resolving any
# more, into a virtual environment; then `releaselog serve` (migrate, then uvicorn).
# Lint: `hadolint Dockerfile` (tests/test_docker.py runs it).

# --- build: a virtual environment with the project and its runtime dependencies -------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The runtime lock (`make lock` writes it) first: this layer is rebuilt only when it changes.
COPY requirements.lock ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY api ./api
COPY models ./models
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

# --- final: the virtual environment and the migrations; no compilers, no pip cache ----------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ALEMBIC_CONFIG=/app/alembic.ini \
    DATABASE_URL=sqlite:////app/data/releaselog.db \
    PORT=8000 \
    WORKERS=2
# The report's PDF (WeasyPrint) draws text with Pango and HarfBuzz, and needs a font: the
# same system libraries the README names. Debian's security updates are wanted, so the
# versions come from the base image's release rather than a pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 releaselog \
    && useradd --system --uid 10001 --gid releaselog --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin releaselog \
    && mkdir -p /app/data \
    && chown releaselog:releaselog /app/data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
USER 10001:10001
EXPOSE 8000
# slim has no curl: ask /healthz with the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=4)"]
# Migrations first, then serve (WORKERS uvicorn worker processes).
ENTRYPOINT ["releaselog"]
CMD ["serve", "--host", "0.0.0.0"]
