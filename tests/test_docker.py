"""docker/: no Docker engine runs here, so the Dockerfile and compose file are checked for what
they name (commands, options, files, extras, variables), and their entry commands are run
directly against a real PostgreSQL: the service answers /health, a worker starts and stops."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"


def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile() if instruction == name]


def nasprune_commands() -> list[list[str]]:
    """Every nasprune command line the image runs: its CMD and each service's command."""
    entry = yaml.safe_load(instructions("ENTRYPOINT")[0])
    assert entry == ["nasprune"]
    commands = [yaml.safe_load(instructions("CMD")[-1])]
    for name, service in compose()["services"].items():
        if "command" in service and name != "db":
            commands.append(list(service["command"]))
    return commands


def help_text(command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "nasprune", command, "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )
    assert result.returncode == 0, f"`nasprune {command}` does not exist: {result.stderr}"
    return result.stdout


def test_compose_has_postgres_the_service_and_two_workers_with_volumes() -> None:
    spec = compose()
    services = spec["services"]
    assert set(services) == {"db", "api", "worker"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("api", "worker"):
        build = services[name]["build"]
        assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == (
            DOCKER / "Dockerfile"
        ).resolve()
        mounts = {volume.split(":")[0] for volume in services[name]["volumes"]}
        assert {"checkpoints", "exports"} <= mounts
        assert services[name]["depends_on"]["db"]["condition"] == "service_healthy"
    assert {"database", "checkpoints", "exports"} <= set(spec["volumes"])


@pytest.mark.parametrize("index", range(3))
def test_every_command_and_option_the_image_runs_exists(index: int) -> None:
    command = nasprune_commands()[index]
    text = help_text(command[0])
    for word in command[1:]:
        if word.startswith("--"):
            assert word in text, f"`nasprune {command[0]}` has no option {word}"


def test_the_dockerfile_copies_files_that_exist_and_installs_pinned_cpu_torch() -> None:
    for args in instructions("COPY"):
        *sources, _target = shlex.split(args)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY names {source}, which is not in the repository"
    runs = " ".join(instructions("RUN"))
    assert "-c constraints.txt --index-url https://download.pytorch.org/whl/cpu torch" in runs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for named in re.findall(r"\.\[([a-z,]+)\]", runs):
        assert set(named.split(",")) <= set(extras), f"unknown extras in {named}"
    users = instructions("USER")
    assert users and users[-1] not in ("root", "0")
    assert instructions("HEALTHCHECK") and "/health" in instructions("HEALTHCHECK")[0]


def test_the_package_the_image_installs_carries_the_web_page(tmp_path: Path) -> None:
    """The image installs the package (not editable): its wheel must hold the web page's
    files and the migrations, which are not Python modules."""
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "--quiet", "--wheel-dir", str(tmp_path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("nasprune-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    web = ROOT / "nasprune" / "service" / "web"
    for path in web.rglob("*.*"):
        inside = path.relative_to(ROOT).as_posix()
        assert inside in names, f"the wheel lacks {inside}"
    assert any(n.startswith("storage/migrations/versions/") for n in names)


def test_the_variables_the_files_set_are_read_by_nasprune_and_documented() -> None:
    text = (DOCKER / "compose.yaml").read_text()
    variables = set(re.findall(r"\b(NASPRUNE_[A-Z_]+)", text))
    assert {"NASPRUNE_STORAGE", "NASPRUNE_API_TOKEN"} <= variables
    code = "\n".join(p.read_text() for p in (ROOT / "nasprune").rglob("*.py"))
    readme = (ROOT / "README.md").read_text()
    for variable in variables - {"NASPRUNE_PORT"}:  # the port is compose's own
        assert variable in code, f"{variable} is set by compose.yaml but nasprune never reads it"
    for variable in variables | {"POSTGRES_PASSWORD"}:
        assert variable in readme, f"{variable} is not documented in the README"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.postgres
def test_the_entry_commands_start_and_answer_health_against_postgres(
    postgresql_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    api = compose()["services"]["api"]["command"]
    api = [port if word == "8000" else word for word in api]
    api = [str(tmp_path / "exports") if w == "/data/exports" else str(w) for w in api]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NASPRUNE_STORAGE": postgresql_url.replace("postgresql+psycopg://", "postgresql://"),
    }
    env.pop("NASPRUNE_API_TOKEN", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "nasprune", *api],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the service never answered /health"
                time.sleep(0.3)
        worker = compose()["services"]["worker"]["command"]
        done = subprocess.run(
            [sys.executable, "-m", "nasprune", *worker, "--until-idle"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "no search has work left" in done.stdout
    finally:
        server.terminate()
        server.wait(timeout=30)
