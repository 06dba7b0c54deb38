#!/usr/bin/env python3
"""modgate against the same upstream hit directly: wrk at two concurrencies, req/s, p50/p99.

`make bench` runs this file. It starts every real part the test suite starts (a throwaway
PostgreSQL for the audit trail, OPA on the repo's policies/ with the production command
line of gateway/policy/opa_command.py, a development PKI, an API token, `modgate serve`
over TLS) in front of a fast in-memory upstream serving one real Go module, then drives
both with Debian's wrk and prints throughput, latency, their ratios, the CPU each process
spent per request and whether every request left an audit row.

Layout on a 2-core machine: the servers (modgate, OPA, PostgreSQL, upstream) share core 0,
wrk has core 1. See bench/README.md for how to read the numbers.

    .venv/bin/python bench/proxy_bench.py [--duration 10] [--concurrency 8 64] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import resource
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

import asyncpg

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file: make the repo's packages importable
    sys.path.insert(0, str(REPO))

from gateway.audit import migrate  # noqa: E402
from gateway.certs import init_dev_pki  # noqa: E402
from gateway.settings import DEFAULT_TOKEN_CACHE_S  # noqa: E402
from tests.support.gateway import GatewayProcess  # noqa: E402
from tests.support.gomodules import (  # noqa: E402
    ModuleVersion,
    build_module,
    escape,
    write_proxy_tree,
)
from tests.support.opa import OpaServer  # noqa: E402
from tests.support.ports import free_port  # noqa: E402
from tests.support.postgres import ThrowawayPostgres  # noqa: E402
from tests.support.processes import stop_process  # noqa: E402

SERVER_CORE = 0  # modgate, OPA, PostgreSQL and the upstream
LOAD_CORE = 1  # wrk
MODULE, VERSION = "example.com/bench", "v1.0.0"
KINDS = ("info", "zip")
ROLES = ("modgate", "opa", "postgres", "upstream")
NOISY = 0.10  # other CPU above this share of a core makes a run suspect
TOKEN_ARGS = ("--subject", "bench", "--group", "developers")
WRK_MISSING = (
    "proxy_bench: wrk not found: run `make bench`, which installs Debian's wrk "
    "(or apt-get install wrk yourself)"
)
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- the baseline upstream ------------------------------------------------------------------


def content_type(name: str) -> str:
    if name.endswith(".info") or name == "@latest":
        return "application/json"
    if name.endswith(".zip"):
        return "application/zip"
    return "text/plain; charset=utf-8"


def serve_upstream(root: Path, port: int) -> None:
    """The baseline upstream: aiohttp on uvloop, every file under ``root`` held in memory.

    tests.support.upstream.UpstreamServer (ThreadingHTTPServer, a file read per request)
    would itself be the bottleneck and make the direct row meaningless.
    """
    import uvloop
    from aiohttp import web

    files = {
        "/" + path.relative_to(root).as_posix(): (path.read_bytes(), content_type(path.name))
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }

    async def handle(request: web.Request) -> web.Response:
        hit = files.get(request.path)
        if hit is None:
            return web.Response(status=404, text=f"not found: {request.path}\n")
        body, ctype = hit
        return web.Response(body=body, headers={"Content-Type": ctype})

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    uvloop.run(run())


class FastUpstream:
    """This file re-run with --serve-upstream as a subprocess (own session: no Ctrl-C)."""

    def __init__(self, root: Path, log_path: Path, probe: str) -> None:
        self.root = root
        self.log_path = log_path
        self.probe = probe
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> FastUpstream:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve-upstream",
                str(self.root),
                "--port",
                str(self.port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/{self.probe}", timeout=1):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"baseline upstream did not start in {timeout_s} s:\n{tail}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        log, self._log = self._log, None
        stop_process(proc, log)

    def __enter__(self) -> FastUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# -- the module, the token, the answers -----------------------------------------------------


def bench_module(work: Path, zip_kb: int) -> ModuleVersion:
    """One real module; a table of random constants gives its zip about ``zip_kb`` KiB."""
    rng = random.Random(20240101)
    constants = max(1, zip_kb * 1024 // 10)  # each random 64-bit literal deflates to ~10 B
    table = "".join(f"\t0x{rng.getrandbits(64):016x},\n" for _ in range(constants))
    files = {
        "bench.go": 'package bench\n\n// Hello greets.\nfunc Hello() string { return "hello" }\n',
        "table.go": (
            "package bench\n\n// Table is filler that gives the module zip a realistic size.\n"
            f"var Table = [...]uint64{{\n{table}}}\n"
        ),
    }
    return build_module(work / "src", MODULE, VERSION, files)


def create_token(database_url: str) -> str:
    """`modgate token create`, exactly as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "token", "create", *TOKEN_ARGS],
        cwd=REPO,
        env={**os.environ, "MODGATE_AUDIT_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def fetch(url: str, headers: dict[str, str], context: ssl.SSLContext | None) -> bytes:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        body: bytes = response.read()
        return body


def check_answers(
    urls: dict[tuple[str, str], str],
    expected: dict[str, bytes],
    token: str,
    context: ssl.SSLContext,
) -> None:
    """Both targets must serve the module's exact bytes before anything is measured."""
    for (target, kind), url in urls.items():
        headers = {"Authorization": f"Bearer {token}"} if target == "modgate" else {}
        body = fetch(url, headers, context if target == "modgate" else None)
        if body != expected[kind]:
            raise RuntimeError(f"{target} served wrong bytes for {url} ({len(body)} bytes)")


# -- wrk ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    cpu_s: float  # wrk's own user+system time

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def to_ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse_wrk(output: str, cpu_s: float = 0.0) -> WrkResult:
    """Read wrk 4's --latency report; raise ValueError when a required line is missing."""

    def need(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output has no match for {pattern!r}:\n{output}")
        return match

    done = need(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
    p50 = need(r"^\s*50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    p99 = need(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    rps = need(r"^Requests/sec:\s+([\d.]+)")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = {}
    if sockets is not None:
        names = ("connect", "read", "write", "timeout")
        socket_errors = {n: int(v) for n, v in zip(names, sockets.groups(), strict=True)}
    return WrkResult(
        requests=int(done[1]),
        seconds=to_ms(done[2], done[3]) / 1e3,
        rps=float(rps[1]),
        p50_ms=to_ms(p50[1], p50[2]),
        p99_ms=to_ms(p99[1], p99[2]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=socket_errors,
        cpu_s=cpu_s,
    )


def run_wrk(url: str, concurrency: int, seconds: int, headers: Sequence[str]) -> WrkResult:
    """One wrk run (one thread) pinned to the load core."""
    command = ["taskset", "-c", str(LOAD_CORE), "wrk", "-t1", f"-c{concurrency}"]
    command += [f"-d{seconds}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return parse_wrk(done.stdout, cpu)


# -- CPU accounting from /proc --------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    ppid: int
    ticks: int  # utime + stime
    argv: tuple[str, ...]


def proc_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        rest = stat[stat.rindex(")") + 2 :].split()
        table[int(entry)] = Proc(
            ppid=int(rest[1]),
            ticks=int(rest[11]) + int(rest[12]),
            argv=tuple(a.decode(errors="replace") for a in argv if a),
        )
    return table


def descendants(table: dict[int, Proc], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, proc in table.items():
        children.setdefault(proc.ppid, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def classify(argv: tuple[str, ...]) -> str | None:
    if "--serve-upstream" in argv:
        return "upstream"
    if "gateway.cli" in argv and "serve" in argv:
        return "modgate"
    if argv and Path(argv[0]).name == "opa":
        return "opa"
    return None


def server_roles(table: dict[int, Proc], postmaster: int) -> dict[int, str]:
    """pid → role for every server process (PostgreSQL daemonises: found via its pid file)."""
    roles = {pid: "postgres" for pid in {postmaster, *descendants(table, postmaster)}}
    for pid in descendants(table, os.getpid()):
        role = classify(table[pid].argv)
        if role is not None:
            roles[pid] = role
    return roles


def core_jiffies() -> dict[int, tuple[int, int]]:
    """core → (busy, total) jiffies from /proc/stat."""
    cores = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            numbers = [int(v) for v in values[:8]]
            idle = numbers[3] + numbers[4]
            cores[int(name[3:])] = (sum(numbers) - idle, sum(numbers))
    return cores


@dataclass(frozen=True)
class Snapshot:
    ticks: dict[int, tuple[str, int]]
    cores: dict[int, tuple[int, int]]

    @staticmethod
    def take(postmaster: int) -> Snapshot:
        table = proc_table()
        roles = server_roles(table, postmaster)
        ticks = {pid: (role, table[pid].ticks) for pid, role in roles.items()}
        return Snapshot(ticks, core_jiffies())


@dataclass(frozen=True)
class CpuUse:
    seconds: dict[str, float]  # role → CPU seconds during the run
    busy: dict[int, float]  # core → busy fraction during the run
    busy_s: float  # CPU seconds the two cores spent, whoever spent them
    elapsed_s: float


def cpu_between(before: Snapshot, after: Snapshot) -> CpuUse:
    seconds = dict.fromkeys(ROLES, 0.0)
    for pid, (role, ticks) in after.ticks.items():
        old = before.ticks.get(pid)
        seconds[role] += (ticks - (old[1] if old else 0)) / _CLK_TCK
    busy, busy_s, elapsed = {}, 0.0, 0.0
    for core in (SERVER_CORE, LOAD_CORE):
        used, total = after.cores[core]
        old_used, old_total = before.cores[core]
        busy[core] = (used - old_used) / max(1, total - old_total)
        busy_s += (used - old_used) / _CLK_TCK
        elapsed = max(elapsed, (total - old_total) / _CLK_TCK)
    return CpuUse(seconds, busy, busy_s, elapsed)


def other_share(cpu: CpuUse, wrk_cpu_s: float) -> float:
    """CPU the two cores spent on anything but our servers and wrk, as a share of one core:
    somebody else's work on this machine (short-lived processes included), i.e. noise."""
    ours = sum(cpu.seconds.values()) + wrk_cpu_s
    return max(0.0, cpu.busy_s - ours) / max(cpu.elapsed_s, 1e-9)


def affinity(pid: int) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


# -- the audit trail ------------------------------------------------------------------------


def audit_counts(dsn: str) -> tuple[int, int]:
    """(rows, rows never completed) in audit_records."""

    async def query() -> tuple[int, int]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow(
                "SELECT count(*) AS n, count(*) FILTER (WHERE completed_at IS NULL) AS open "
                "FROM audit_records"
            )
        finally:
            await conn.close()
        assert row is not None
        return int(row["n"]), int(row["open"])

    return asyncio.run(query())


def audit_outcomes(dsn: str, since: datetime) -> dict[str, int]:
    """ "<status> [<error code>]" → rows, for requests modgate received since ``since``."""

    async def query() -> dict[str, int]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT status, error_code, count(*) AS n FROM audit_records "
                "WHERE received_at >= $1 GROUP BY status, error_code ORDER BY n DESC",
                since,
            )
        finally:
            await conn.close()
        return {
            " ".join(str(part) for part in (row["status"], row["error_code"]) if part): row["n"]
            for row in rows
        }

    return asyncio.run(query())


# -- one measured run and the report --------------------------------------------------------


@dataclass
class Run:
    target: str  # direct | modgate
    kind: str  # info | zip
    concurrency: int
    wrk: WrkResult
    cpu: CpuUse
    audit_rows: int | None = None
    audit_open: int | None = None
    audit_outcomes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def measure(
    target: str,
    kind: str,
    concurrency: int,
    url: str,
    headers: Sequence[str],
    seconds: int,
    warmup: int,
    postmaster: int,
    libpq_dsn: str,
) -> Run:
    say(f"{target:7} {kind:4} c={concurrency:<3} warm-up {warmup} s, then {seconds} s")
    run_wrk(url, concurrency, warmup, headers)
    time.sleep(0.5)  # requests cut off by the warm-up's end settle
    rows_before, open_before = audit_counts(libpq_dsn)
    started = datetime.now(UTC)  # modgate stamps received_at with this machine's clock
    before = Snapshot.take(postmaster)
    result = run_wrk(url, concurrency, seconds, headers)
    cpu = cpu_between(before, Snapshot.take(postmaster))
    run = Run(target, kind, concurrency, result, cpu)
    time.sleep(0.5)
    if target == "modgate":
        rows_after, open_after = audit_counts(libpq_dsn)
        run.audit_rows, run.audit_open = rows_after - rows_before, open_after - open_before
        run.audit_outcomes = audit_outcomes(libpq_dsn, started)
        extra = run.audit_rows - result.requests
        if extra < 0:
            run.problems.append(f"{-extra} answered requests have no audit row")
        elif extra > concurrency:
            run.problems.append(f"{extra} audit rows more than answered requests")
    if result.non_2xx:
        run.problems.append(f"{result.non_2xx} non-2xx/3xx responses")
    # wrk drops the requests in flight when it stops: zips it was reading then are
    # (rightly) recorded 499 client_disconnected, at most one per connection.
    cut_off = run.audit_outcomes.get("499 client_disconnected", 0)
    refused = {
        k: n
        for k, n in run.audit_outcomes.items()
        if not k.startswith("200") and not (k == "499 client_disconnected" and n <= concurrency)
    }
    if refused:
        run.problems.append(f"modgate recorded refusals {outcome_text(refused)}")
    elif cut_off:
        say(f"        ({cut_off} zips in flight at wrk's cut-off recorded client_disconnected)")
    failed = {name: n for name, n in result.socket_errors.items() if n}
    if failed:
        run.problems.append("socket errors " + ", ".join(f"{k} {v}" for k, v in failed.items()))
    flag = f"  FLAGGED: {'; '.join(run.problems)}" if run.problems else ""
    say(f"        {result.rps:10.1f} req/s  p50 {result.p50_ms:.2f} ms{flag}")
    return run


def outcome_text(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{key} x{n}" for key, n in outcomes.items()) or "-"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3f}" if b else "-"


def report(runs: list[Run], sizes: dict[str, int], args: argparse.Namespace) -> str:
    by_key = {(r.target, r.kind, r.concurrency): r for r in runs}
    ordered = sorted(runs, key=lambda r: (KINDS.index(r.kind), r.concurrency, r.target))
    lines = [
        "",
        f"modgate benchmark: wrk -t1, {args.duration} s per run after a {args.warmup} s "
        f"warm-up; servers on core {SERVER_CORE}, wrk on core {LOAD_CORE}",
        f"  {MODULE}@{VERSION}: .info {sizes['info']} B (buffered), "
        f".zip {sizes['zip']} B (streamed); direct = plain http to the upstream, "
        "modgate = https + Bearer token + OPA + PostgreSQL audit",
        "",
        f"{'path':<5} {'conc':>4}  {'target':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}"
        f"  | {'req/s x':>8} {'p50 x':>7} {'p99 x':>7} | {'errors':>6}",
    ]
    for r in ordered:
        w = r.wrk
        cells = f"{'':>8} {'':>7} {'':>7}"
        base = by_key.get(("direct", r.kind, r.concurrency))
        if r.target == "modgate" and base is not None:
            b = base.wrk
            cells = (
                f"{ratio(w.rps, b.rps):>8} {ratio(w.p50_ms, b.p50_ms):>7} "
                f"{ratio(w.p99_ms, b.p99_ms):>7}"
            )
        flag = " !" if r.problems else ""
        lines.append(
            f"{r.kind:<5} {r.concurrency:>4}  {r.target:<8} {w.rps:>9.1f} {w.p50_ms:>8.2f} "
            f"{w.p99_ms:>8.2f}  | {cells} | {w.errors:>6}{flag}"
        )
    lines += [
        "",
        "CPU per answered request (us, from /proc), how busy each core was, and the CPU the two",
        "cores spent on anything else (other, % of one core: noise from other work):",
        f"{'path':<5} {'conc':>4}  {'target':<8}"
        + "".join(f" {role:>9}" for role in (*ROLES, "wrk"))
        + f"  | {'core ' + str(SERVER_CORE):>7} {'core ' + str(LOAD_CORE):>7} {'other':>7}",
    ]
    for r in ordered:
        n = max(1, r.wrk.requests)
        per = [r.cpu.seconds[role] / n * 1e6 for role in ROLES] + [r.wrk.cpu_s / n * 1e6]
        lines.append(
            f"{r.kind:<5} {r.concurrency:>4}  {r.target:<8}"
            + "".join(f" {us:>9.0f}" for us in per)
            + f"  | {r.cpu.busy.get(SERVER_CORE, 0) * 100:>6.0f}%"
            + f" {r.cpu.busy.get(LOAD_CORE, 0) * 100:>6.0f}%"
            + f" {other_share(r.cpu, r.wrk.cpu_s) * 100:>6.0f}%"
        )
    lines += [
        "",
        "Audit: rows PostgreSQL got during each modgate run vs requests wrk saw answered",
        "(rows may exceed answers by at most the concurrency: requests in flight at the cut-off)",
        f"{'path':<5} {'conc':>4}  {'wrk answered':>12} {'audit rows':>10} {'extra':>6} "
        f"{'never completed':>15}  outcomes (status [error code] x rows)",
    ]
    for r in ordered:
        if r.target != "modgate" or r.audit_rows is None:
            continue
        lines.append(
            f"{r.kind:<5} {r.concurrency:>4}  {r.wrk.requests:>12} {r.audit_rows:>10} "
            f"{r.audit_rows - r.wrk.requests:>6} {r.audit_open or 0:>15}  "
            f"{outcome_text(r.audit_outcomes)}"
        )
    flagged = [r for r in ordered if r.problems]
    lines.append("")
    if flagged:
        lines.append("FLAGGED runs (numbers above are not trustworthy for these):")
        for r in flagged:
            lines.append(f"  {r.target} {r.kind} c={r.concurrency}: {'; '.join(r.problems)}")
    else:
        lines.append("No errors: every response was 2xx, no socket errors, audit rows match.")
    noisy = [r for r in ordered if other_share(r.cpu, r.wrk.cpu_s) > NOISY]
    if noisy:
        lines.append(
            "NOISY: other processes on this machine took CPU during "
            + ", ".join(f"{r.target} {r.kind} c={r.concurrency}" for r in noisy)
            + " (column other): rerun on a quiet machine"
        )
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up before each")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[8, 64], help="wrk connections"
    )
    parser.add_argument("--quick", action="store_true", help="2 s runs, 1 s warm-up: smoke check")
    parser.add_argument("--zip-kb", type=int, default=32, help="approximate module zip size")
    parser.add_argument("--serve-upstream", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 2, 1
    if args.duration < 1 or args.warmup < 1 or min(args.concurrency) < 1:
        parser.error("--duration, --warmup and --concurrency must be at least 1")
    if args.duration > 300:
        parser.error("--duration is capped at 300 s")
    if max(args.concurrency) > 1024:
        parser.error("--concurrency is capped at 1024")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwind the ExitStack: every process and directory is removed


def _ignore_signals() -> None:
    """Cleanup runs to the end: a second Ctrl-C must not leave processes behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def bench(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modgate-bench-")))
        say(f"building {MODULE}@{VERSION} with the go command")
        module = bench_module(work, args.zip_kb)
        write_proxy_tree(work / "proxy", [module])
        pki = init_dev_pki(work / "pki")
        # Every server started from here on inherits core 0; wrk gets core 1 via taskset.
        os.sched_setaffinity(0, {SERVER_CORE})
        say("starting PostgreSQL, OPA, the upstream and modgate")
        pg = stack.enter_context(ThrowawayPostgres())
        migrate.upgrade(pg.dsn())
        opa = stack.enter_context(OpaServer(REPO / "policies", log_path=work / "opa.log"))
        base = f"{escape(MODULE)}/@v/{escape(VERSION)}"
        upstream = stack.enter_context(
            FastUpstream(work / "proxy", work / "upstream.log", f"{base}.info")
        )
        token = create_token(pg.dsn())
        env = {
            "MODGATE_AUDIT_DATABASE_URL": pg.dsn(),
            "MODGATE_POLICY_OPA_URL": opa.url,
            "MODGATE_UPSTREAM_PUBLIC": upstream.url,
            "MODGATE_UPSTREAM_PRIVATE": "",
            "MODGATE_TLS_CERT_FILE": str(pki.server_cert),
            "MODGATE_TLS_KEY_FILE": str(pki.server_key),
            "MODGATE_IDENTITY_TOKEN_CACHE_S": str(DEFAULT_TOKEN_CACHE_S),
        }
        gateway = stack.enter_context(GatewayProcess(env, pki.ca_cert, work / "modgate.log"))
        stack.callback(_ignore_signals)  # runs first when the stack unwinds

        try:
            assert pg.base is not None
            postmaster = int((pg.base / "data" / "postmaster.pid").read_text().split()[0])
            roles = server_roles(proc_table(), postmaster)
            for role in ROLES:
                pids = sorted(pid for pid, r in roles.items() if r == role)
                if not pids:
                    raise RuntimeError(f"no {role} process found for CPU accounting")
                cores = sorted({affinity(pid) for pid in pids})
                say(f"{role:8} pids {pids[:4]}{'...' if len(pids) > 4 else ''} cores {cores}")
            urls = {
                (target, kind): f"{root}/{base}.{kind}"
                for target, root in (("direct", upstream.url), ("modgate", gateway.url))
                for kind in KINDS
            }
            context = ssl.create_default_context(cafile=str(pki.ca_cert))
            expected = {"info": module.info_json(), "zip": module.zip}
            check_answers(urls, expected, token, context)
            runs = []
            for kind in KINDS:
                for concurrency in args.concurrency:
                    for target in ("direct", "modgate"):
                        headers = [f"Authorization: Bearer {token}"] if target == "modgate" else []
                        runs.append(
                            measure(
                                target,
                                kind,
                                concurrency,
                                urls[target, kind],
                                headers,
                                args.duration,
                                args.warmup,
                                postmaster,
                                pg.libpq_dsn(),
                            )
                        )
        except Exception:
            say(f"failed; modgate log tail:\n{gateway.log_tail()}")
            raise
        sizes = {kind: len(body) for kind, body in expected.items()}
        print(report(runs, sizes, args), flush=True)
        # A benchmark reports; flagged runs are marked in the table, not turned into failure.
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_upstream is not None:
        serve_upstream(args.serve_upstream, args.port)
        return 0
    if shutil.which("wrk") is None:
        print(WRK_MISSING, file=sys.stderr)
        return 2
    if shutil.which("taskset") is None:
        print("proxy_bench: taskset not found (Debian's util-linux)", file=sys.stderr)
        return 2
    if not {SERVER_CORE, LOAD_CORE} <= os.sched_getaffinity(0):
        print(f"proxy_bench: needs cores {SERVER_CORE} and {LOAD_CORE}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return bench(args)
    except KeyboardInterrupt:
        say("interrupted; everything started was stopped and removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
