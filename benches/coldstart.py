"""Cold start of each function binary beside a bare `lambda_runtime` binary, on one harness.

Each binary is started `--reps` times (after one discarded warm-up start) against a minimal
Runtime API stub, pinned to one CPU (the affinity `taskset -c CPU` sets, inherited from the spawning thread); a sample is the time from just
before the exec to the stub receiving the first `GET /2018-06-01/runtime/invocation/next`
(the end of init). The process is then killed: no invocation runs. The bare binary is
lambda-local's echo fixture (`lambda-local-echo-fn`: `lambda_runtime::run` and nothing
else), built with the same profile as the functions.

    .venv/bin/python benches/coldstart.py --profile release --reps 20 [--label after]
      [--env AWS_CA_TRUST=system] [--markdown]
"""

import argparse
import http.server
import os
import statistics
import signal
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE = "lambda-local-echo-fn"
FUNCTIONS = ["classify-ticket", "summarize-document", "translate", "jobs"]
NEXT = "/2018-06-01/runtime/invocation/next"

# What a deployed function sees at init, with dummy credentials: settings at their
# defaults, the region and credentials from the environment (as on Lambda).
BASE_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "AKIDCOLDSTART",
    "AWS_SECRET_ACCESS_KEY": "coldstart",
    "AWS_SESSION_TOKEN": "coldstart",
    "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/coldstart",
    "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
    "LAMBDA_TASK_ROOT": "/var/task",
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp/coldstart-home",
    # The shared job store, as the template sets it for every function.
    "JOBS_TABLE": "jobs",
    "JOBS_BUCKET": "jobs-results",
    # The jobs function's required settings.
    "SUMMARIZE_FUNCTION": "summarize-document",
    "TRANSLATE_FUNCTION": "translate",
    "CLASSIFY_FUNCTION": "classify-ticket",
}


class Stub(http.server.BaseHTTPRequestHandler):
    """Records when the first `next` request arrives and answers nothing else."""

    arrived = None  # set per run: a threading.Event
    at_ns = 0
    errors = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == NEXT and not Stub.arrived.is_set():
            Stub.at_ns = time.perf_counter_ns()
            Stub.arrived.set()
        # Hold the request: the process is killed before an event would be due.
        time.sleep(0.2)

    def do_POST(self):  # noqa: N802
        Stub.errors.append(self.path)
        length = int(self.headers.get("content-length", 0))
        Stub.errors.append(self.rfile.read(length).decode(errors="replace"))
        self.send_response(202)
        self.end_headers()
        if Stub.arrived is not None:
            Stub.arrived.set()

    def log_message(self, *args):
        pass


def one_start(binary: Path, env: dict) -> float:
    Stub.arrived = threading.Event()
    Stub.errors = []
    devnull = os.open(os.devnull, os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    start = time.perf_counter_ns()
    pid = os.posix_spawn(str(binary), [str(binary)], env, file_actions=actions)
    ok = Stub.arrived.wait(10)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(devnull)
    if not ok or Stub.errors:
        raise RuntimeError(f"{binary.name} did not reach invocation/next: {Stub.errors}")
    return (Stub.at_ns - start) / 1e6


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="release", help="target/<profile> holds the binaries")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--cpu", default="0", help="the CPU the binaries are pinned to")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the functions")
    p.add_argument("--only", action="append", help="measure only these binaries (besides the bare one)")
    p.add_argument("--label", default="", help="a column label (before/after)")
    p.add_argument("--markdown", action="store_true", help="print markdown table rows")
    args = p.parse_args()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(BASE_ENV, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{server.server_address[1]}")
    os.makedirs(env["HOME"], exist_ok=True)
    env.update(kv.split("=", 1) for kv in args.env)

    # Pins this (spawning) thread, whose CPU set the binaries inherit; the stub's thread,
    # started above, keeps every CPU. `posix_spawn` (no fork of this process, no `taskset`
    # exec) keeps the harness's own share of a sample small.
    os.sched_setaffinity(0, {int(c) for c in args.cpu.split(",")})
    target = ROOT / "target" / args.profile
    names = [BARE] + (args.only or FUNCTIONS)
    samples = {name: [] for name in names}
    for name in names:  # one discarded warm-up start each (page cache)
        one_start(target / name, env)
    for _ in range(args.reps):  # interleaved, so drift hits every binary alike
        for name in names:
            samples[name].append(one_start(target / name, env))
    server.shutdown()

    bare = statistics.median(samples[BARE])
    for name in names:
        s = sorted(samples[name])
        med = statistics.median(s)
        p90 = s[min(len(s) - 1, int(round(0.9 * (len(s) - 1))))]
        if args.markdown:
            print(f"| {name} | {args.label} | {med:.1f} | {p90:.1f} | {med / bare:.2f}x |")
        else:
            print(f"{name:22} {args.label:10} median {med:6.1f} ms  p90 {p90:6.1f} ms  {med / bare:5.2f}x bare")


if __name__ == "__main__":
    main()
