"""No secret ships in the code: without SECRET_KEY a process refuses to start (outside the test
suite), a key once published is refused like a missing one, a token signed with the old default is
not accepted, and `make run` generates a key on first start and keeps it under var/."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from itsdangerous import URLSafeTimedSerializer

from models.infra.settings import ConfigError, get_settings, load_settings
from tests.support import assert_error

ROOT = Path(__file__).resolve().parent.parent
OLD_DEFAULT = "dev-insecure-secret-change-me"


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr("models.infra.settings.load_dotenv", lambda *a, **k: False)  # a developer's .env
    return monkeypatch


@pytest.mark.parametrize("env", ["development", "production", "staging"])
def test_no_secret_key_refuses_to_load_outside_tests(environ: pytest.MonkeyPatch, env: str) -> None:
    environ.setenv("APP_ENV", env)
    environ.delenv("SECRET_KEY")
    with pytest.raises(ConfigError, match="SECRET_KEY is not set"):
        load_settings()


@pytest.mark.parametrize("key", [OLD_DEFAULT, "test-secret", "change-me", "short-but-random-x7"])
def test_published_or_short_keys_are_refused(environ: pytest.MonkeyPatch, key: str) -> None:
    environ.setenv("APP_ENV", "development")
    environ.setenv("SECRET_KEY", key)
    with pytest.raises(ConfigError, match="at least 32 characters"):
        load_settings()


def test_the_test_suite_gets_a_random_key_when_none_is_set(environ: pytest.MonkeyPatch) -> None:
    environ.setenv("APP_ENV", "test")
    environ.delenv("SECRET_KEY")
    first, second = load_settings().secret_key, load_settings().secret_key
    assert first != second and len(first) >= 32


def test_this_run_signs_with_a_random_key() -> None:
    key = get_settings().secret_key
    assert key not in {OLD_DEFAULT, "test-secret"} and len(key) >= 32


PROCESSES = {
    "web": ["-m", "uvicorn", "web.app:app", "--port", "0"],
    "worker": ["-m", "celery", "-A", "tasks", "worker", "-P", "solo", "--loglevel", "ERROR"],
    "beat": ["-m", "celery", "-A", "tasks", "beat", "--loglevel", "ERROR", "-s", "{tmp}/beat-schedule"],
}


@pytest.mark.parametrize("process", sorted(PROCESSES))
def test_processes_refuse_to_start_without_a_key(process: str, tmp_path: Path) -> None:
    if (ROOT / ".env").exists() and "SECRET_KEY" in (ROOT / ".env").read_text():
        pytest.skip("this checkout's .env sets SECRET_KEY")
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["APP_ENV"] = "development"
    args = [arg.format(tmp=tmp_path) for arg in PROCESSES[process]]
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "ConfigError: SECRET_KEY is not set" in done.stderr


def test_a_token_signed_with_the_old_default_is_refused(client, make_user) -> None:  # type: ignore[no-untyped-def]
    user, _ = make_user(admin=True)
    forged = URLSafeTimedSerializer(OLD_DEFAULT, salt="shop.access").dumps({"uid": user.id, "ver": 0, "jti": "x"})
    assert_error(client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"}), 401, "not_authenticated")


def test_make_run_generates_a_key_once_and_keeps_it(environ: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import manage

    environ.delenv("SECRET_KEY")
    path = tmp_path / "var" / "secret_key"
    manage.ensure_secret_key(path=path)
    first = os.environ["SECRET_KEY"]
    assert len(first) >= 32 and path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # readable by its owner only
    environ.delenv("SECRET_KEY")
    manage.ensure_secret_key(path=path)
    assert os.environ["SECRET_KEY"] == first  # the next start signs with the same key: tokens survive it
    environ.setenv("APP_ENV", "development")
    assert load_settings().secret_key == first


def test_other_commands_against_a_real_database_do_not_invent_a_key(
    environ: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import manage

    environ.delenv("SECRET_KEY")
    environ.setenv("DATABASE_URL", "postgresql://db.internal/shop")
    path = tmp_path / "secret_key"
    manage.ensure_secret_key(embedded_only=True, path=path)
    assert "SECRET_KEY" not in os.environ and not path.exists()
