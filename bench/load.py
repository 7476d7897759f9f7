"""wrk runs: one composite Lua script per scenario, figures parsed from its JSON line, medians of
several runs."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk is not installed: `apt-get install -y wrk` (Debian's package), then run again")
    return path


def ensure_wrk() -> str:
    """wrk's path, installing Debian's package first when it is missing and we may (root with
    apt-get); otherwise exit saying what to run. Called before any setup, so that a machine
    without wrk learns it in a second, not after minutes of starting services."""
    if path := shutil.which("wrk"):
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("==> wrk is not installed: running `apt-get install -y wrk`", flush=True)
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, stdout=subprocess.DEVNULL, check=False).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, check=False)
            subprocess.run(install, stdout=subprocess.DEVNULL, check=False)
        if path := shutil.which("wrk"):
            return path
        raise SystemExit("`apt-get install -y wrk` did not install wrk; install it, then run `make bench` again")
    command = "apt-get install -y wrk" if os.geteuid() == 0 else "sudo apt-get install -y wrk"
    raise SystemExit(
        f"wrk (the HTTP load generator) is not installed: run `{command}` (Debian/Ubuntu's package; "
        "elsewhere your system's wrk package), then `make bench` again"
    )


def wrk_version() -> str:
    out = subprocess.run([require_wrk(), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split(" Copyright")[0].strip()


def wrk_once(url: str, scripts: list[str], seconds: float, connections: int, env: dict[str, str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as combined:
        for name in ["headers.lua", *scripts, "report.lua"]:
            combined.write((LUA / name).read_text() + "\n")
    try:
        out = subprocess.run(
            [require_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", combined.name, url],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=seconds + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(combined.name)
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    return json.loads(line[len("WRK_JSON ") :])


def measure(
    url: str,
    scripts: list[str] | None = None,
    *,
    runs: int,
    seconds: float,
    connections: int = 32,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Median requests/s and latencies of `runs` wrk runs (after one short warm-up)."""
    wrk_once(url, scripts or [], min(seconds, 2), connections, env or {})
    return summary([wrk_once(url, scripts or [], seconds, connections, env or {}) for _ in range(runs)])


def pooled(*measured: dict[str, Any]) -> dict[str, Any]:
    """One figure from the runs of several measurements of the same thing (a baseline measured
    before and after the scenarios compared with it, so that a machine that slowed down or sped
    up meanwhile does not skew their ratios)."""
    return summary([run for m in measured for run in m["runs"]])


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rps": statistics.median(r["rps"] for r in results),
        "p50_ms": statistics.median(r["p50_ms"] for r in results),
        "p99_ms": statistics.median(r["p99_ms"] for r in results),
        "errors": sum(r["non_2xx_3xx"] + r["socket_errors"] for r in results),
        "runs": results,
    }


if __name__ == "__main__":  # `make bench` checks first, before installing the bench's packages
    ensure_wrk()
