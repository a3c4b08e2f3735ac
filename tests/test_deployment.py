"""The deployment files, checked without a container engine: docker-compose.yml against the
Compose specification's JSON Schema, the Dockerfile's stages, and the image's own command line
run here with the production settings the compose file gives the API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from service.config import PROJECT_ROOT, Settings
from service.content.operations import bootstrap_development
from tests.helpers import free_port

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
IMAGE_ROOT = "/app/"  # WORKDIR in the image, where the project's files are


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    result = check_compose(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr

    # the schema has teeth: a condition Compose does not know is refused
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE.read_text().replace(
            "condition: service_completed_successfully", "condition: service_finished"
        )
    )
    refused = check_compose(broken)
    assert refused.returncode != 0
    assert "service_finished" in refused.stdout + refused.stderr


def test_migrations_run_once_before_the_api_with_postgresql_and_redis(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) == {"db", "redis", "migrate", "api"}
    assert services["migrate"]["command"][-1] == "migrate"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert services["api"]["depends_on"]["migrate"] == {
        "condition": "service_completed_successfully"
    }
    api = resolved(services["api"]["environment"])
    assert api["CONTENT_API_ENV"] == "production"
    assert api["CONTENT_API_DATABASE_URL"].startswith("postgresql://")
    assert (
        api["CONTENT_API_DATABASE_URL"]
        == resolved(services["migrate"]["environment"])["CONTENT_API_DATABASE_URL"]
    )
    # valid production settings, read from the environment as `contentapi serve` reads them
    for name in os.environ:
        if name.startswith("CONTENT_API_"):
            monkeypatch.delenv(name)
    for name, value in api.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.is_production
    assert settings.allowed_origins == ["https://shop.example.com"]
    assert settings.workers > 1


def test_the_dockerfile_builds_with_uv_and_runs_slim_and_unprivileged() -> None:
    build, runtime = stages()
    assert any("uv sync --frozen --no-dev" in line for line in build["RUN"])
    assert "uv" not in " ".join(runtime["RUN"])  # no build tool in the image that runs
    assert any("--from=build /app/.venv" in line for line in runtime["COPY"])
    assert runtime["FROM"][0].startswith("python:3.11-slim")
    user = runtime["USER"][-1]
    assert user not in {"root", "0"}
    assert f"--user-group --no-create-home --shell /usr/sbin/nologin {user}" in runtime["RUN"][0]
    assert json.loads(runtime["HEALTHCHECK"][-1].split("CMD", 1)[1])[-1] == "healthcheck"


def test_the_image_command_serves_with_the_compose_production_settings(
    database_url: str, tmp_path: Path
) -> None:
    """The CMD of the Dockerfile, with its ENV and the api service's environment from the
    compose file, run outside a container: this database stands in for the db service."""
    asyncio.run(bootstrap_development(Settings(database_url=database_url)))
    _, runtime = stages()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENT_API_")}
    env |= {name: on_this_machine(value) for name, value in image_env(runtime).items()}
    env |= resolved(yaml.safe_load(COMPOSE.read_text())["services"]["api"]["environment"])
    # what differs outside the container: the database, and loopback with a free port
    env |= {
        "CONTENT_API_DATABASE_URL": database_url,
        "CONTENT_API_HOST": "127.0.0.1",
        "CONTENT_API_PORT": str(port),
    }
    command = [on_this_machine(part) for part in json.loads(runtime["CMD"][-1])]
    healthcheck = [
        on_this_machine(part) for part in json.loads(runtime["HEALTHCHECK"][-1].split("CMD", 1)[1])
    ]
    base = f"http://127.0.0.1:{port}"
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert run(healthcheck, env).returncode != 0  # nothing listens yet
            wait_for(f"{base}/healthz", process)
            wait_for_log(tmp_path / "serve.log", "Application startup complete", 2)
            assert run(healthcheck, env).returncode == 0
            ready = httpx.get(f"{base}/readyz")
            anonymous = httpx.post(f"{base}/graphql", json={"query": "{ release { number } }"})
            allowed = preflight(base, "https://shop.example.com")
            other = preflight(base, "https://elsewhere.example")
            metrics = httpx.get(f"{base}/metrics")
            process.terminate()
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    log_text = (tmp_path / "serve.log").read_text()

    assert ready.status_code == 200
    assert anonymous.status_code == 401  # production: nothing without a key
    assert anonymous.headers["strict-transport-security"].startswith("max-age=")
    assert anonymous.headers["x-content-type-options"] == "nosniff"
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert "access-control-allow-origin" not in other.headers
    assert metrics.status_code == 200  # from loopback, which the compose file allows
    assert "contentapi_http_requests_total" in metrics.text
    # CONTENT_API_WORKERS=2: two server processes, both stopped cleanly
    assert log_text.count("Finished server process") == 2


# --- reading the files ----------------------------------------------------------------------


def stages() -> list[dict[str, list[str]]]:
    """Each stage of the Dockerfile: its instructions' arguments by instruction."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found: list[dict[str, list[str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction == "FROM":
            found.append({})
        found[-1].setdefault(instruction, []).append(arguments.strip())
    return found


def image_env(stage: dict[str, list[str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in stage["ENV"]:
        for name, value in re.findall(r"(\w+)=(\S+)", line):
            values[name] = value.replace("$PATH", os.environ["PATH"])
    return values


def on_this_machine(value: str) -> str:
    return value.replace(IMAGE_ROOT, f"{PROJECT_ROOT}/")


def resolved(environment: dict[str, Any]) -> dict[str, str]:
    """Compose's ${NAME:-default} as an unset variable gives it."""
    return {
        name: re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))
        for name, value in environment.items()
    }


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def wait_for(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, "the image's command exited"
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


def wait_for_log(path: Path, text: str, times: int) -> None:
    deadline = time.monotonic() + 60
    while path.read_text().count(text) < times:
        assert time.monotonic() < deadline, f"{text!r} was not logged {times} times"
        time.sleep(0.1)


def preflight(base: str, origin: str) -> httpx.Response:
    return httpx.options(
        f"{base}/graphql",
        headers={"origin": origin, "access-control-request-method": "POST"},
    )
