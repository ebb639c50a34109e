"""The pieces the benchmarks run against, started on free loopback ports and stopped again:
the Bedrock emulator (scripted test double), moto's S3 server, and lambda-local serving a
function binary or the Python reference behind the Lambda Runtime API."""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

# The local stack's process plumbing (start, address lines, shutdown) and settings; REGION
# is for run.py.
from stack import CREDENTIALS, REGION, ROOT, free_port, spawn, stop_processes, wait_http  # noqa: E402,F401

VENV = ROOT / ".venv" / "bin"


class Service:
    """A started process; ``stop`` terminates it (and only it)."""

    def __init__(self, name: str, cmd: list[str], log: Path, lines: int = 1, env: dict | None = None):
        self.name = name
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self.proc, self.urls = spawn(name, cmd, log, lines, env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_processes([self.proc], timeout=15)


def emulator(profile: str, script: dict, log_dir: Path, tag: str, context_window: int = 131072,
             args: list[str] | None = None) -> Service:
    """bedrock-local with a scripted rules file (the test double: no model runs)."""
    rules = log_dir / f"scripted-{tag}.json"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(json.dumps(script, indent=1))
    cmd = [str(ROOT / "target" / profile / "bedrock-local"), "--listen", "127.0.0.1:0", "--scripted", str(rules),
           "--context-window", str(context_window), *(args or [])]
    env = {**os.environ, "RUST_LOG": "warn"}
    return Service(f"bedrock-local-{tag}", cmd, log_dir / f"bedrock-local-{tag}.log", env=env)


def moto(log_dir: Path) -> Service:
    """moto's S3 in server mode."""
    port = free_port()
    svc = Service("moto", [str(VENV / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], log_dir / "moto.log",
                  lines=0, env={**os.environ, **CREDENTIALS})
    svc.urls = [f"http://127.0.0.1:{port}"]
    try:
        wait_http(f"{svc.urls[0]}/moto-api/")
    except RuntimeError:
        svc.stop()
        raise
    return svc


@dataclass
class Function:
    """A function for lambda-local: its name, executable and settings."""

    name: str
    path: Path
    env: dict[str, str] = field(default_factory=dict)
    concurrency: int = 1
    timeout_s: int = 900


def lambda_local(profile: str, functions: list[Function], log: Path, http_routes: dict[str, str] | None = None
                 ) -> Service:
    """lambda-local serving ``functions`` (urls[0]: Invoke API, urls[1]: HTTP front if routed)."""
    cmd = [str(ROOT / "target" / profile / "lambda-local"), "--listen", "127.0.0.1:0", "--init-timeout", "60"]
    for fn in functions:
        cmd += ["--function", f"{fn.name}={fn.path}", "--timeout", f"{fn.name}={fn.timeout_s}",
                "--concurrency", f"{fn.name}={fn.concurrency}"]
        for key, value in fn.env.items():
            cmd += ["--env", f"{fn.name}:{key}={value}"]
    lines = 1
    if http_routes:
        cmd += ["--http-listen", "127.0.0.1:0"]
        for route, name in http_routes.items():
            cmd += ["--http", f"{route}={name}"]
        lines = 2
    env = {**os.environ, **CREDENTIALS, "RUST_LOG": "warn"}
    return Service("lambda-local", cmd, log, lines=lines, env=env)


def function_pids(parent: int) -> dict[int, str]:
    """The processes whose parent is ``parent``, with their command lines."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, ValueError, IndexError):
            continue
    return out


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


REPORT = re.compile(r"^\[(?P<name>[^\]]+)\] REPORT RequestId: (?P<id>\S+)\tDuration: (?P<duration>[\d.]+) ms"
                    r"(?:.*?Init Duration: (?P<init>[\d.]+) ms)?")


def reports(log: Path) -> list[dict]:
    """The REPORT lines lambda-local wrote: function name, request id, duration, init (ms)."""
    out = []
    with open(log, errors="replace") as f:
        for line in f:
            m = REPORT.match(line)
            if m:
                out.append({"name": m["name"], "id": m["id"], "duration_ms": float(m["duration"]),
                            "init_ms": float(m["init"]) if m["init"] else None})
    return out


class Invoker:
    """Synchronous invokes over one kept-alive connection (little client overhead)."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=900)

    def invoke(self, name: str, payload: bytes) -> tuple[float, int, bytes, str | None]:
        """Seconds, HTTP status, body and X-Amz-Function-Error of one RequestResponse invoke."""
        started = time.perf_counter()
        self.conn.request("POST", f"/2015-03-31/functions/{name}/invocations", body=payload,
                          headers={"content-type": "application/json"})
        resp = self.conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - started
        return elapsed, resp.status, body, resp.getheader("X-Amz-Function-Error")

    def close(self) -> None:
        self.conn.close()
