"""Benchmark: the audit writer's PostgreSQL hot path, COPY against prepared executemany
(and the sink's default, which picks one per batch size).

Each run starts the real AuditWriter over the real AsyncpgSink on a throwaway PostgreSQL
(tests/support/postgres.py, migrated by Alembic) and lets C requesters loop for
``--duration`` seconds, each doing what a request does: ``await writer.record(decision)``
(the decision event, committed before a byte is served: the latency measured) and then
``writer.complete_later(completion)`` (the completion event, not waited for). Group commit
shares transactions between the requesters, as in the gateway.

    .venv/bin/python bench/audit_bench.py [--duration 5] [--rounds 3] [--concurrency 1 16 64]

A second table times one statement of n rows alone, per mechanism: where COPY starts to
beat executemany, which is where the sink switches (``COPY_FROM_ROWS``).

Per mechanism and concurrency it prints requests/s (each one decision and one completion
event), the p50 and p99 wait for the decision's commit, the CPU per request of this
Python process and of the PostgreSQL server (from /proc, Linux: these hold up on a busy
machine, the wall-clock columns do not), and the ratios to executemany, the baseline,
measured in the same process. Rounds interleave the mechanisms; the table is emptied
before every run so no run inherits a bigger index, and autovacuum is off on it. The
throwaway server runs with fsync=off: a commit here costs no disk flush, so the numbers
are the CPU and round-trip cost of each mechanism, not of a disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import asyncpg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.audit import migrate  # noqa: E402
from gateway.audit.records import AuditEvent, Completion, DecisionRecord  # noqa: E402
from gateway.audit.rows import event_row  # noqa: E402
from gateway.audit.sink import (  # noqa: E402
    AsyncpgSink,
    InsertRows,
    copy_or_executemany_rows,
    copy_rows,
    executemany_rows,
)
from gateway.audit.writer import AuditWriter  # noqa: E402
from gateway.goproxy.requests import ModuleRequest  # noqa: E402
from gateway.identity.base import Identity  # noqa: E402
from gateway.policy.input import PolicyInput  # noqa: E402
from tests.support.postgres import ThrowawayPostgres  # noqa: E402
from tests.support.records import completion_record, decision_record  # noqa: E402

MECHANISMS: dict[str, InsertRows] = {
    "executemany": executemany_rows,
    "copy": copy_rows,
    "adaptive": copy_or_executemany_rows,  # the sink's default: executemany below 3 rows
}
BASELINE = "executemany"
TARGET = ModuleRequest("example.com/hello", "zip", "v1.0.0")
IDENTITY = Identity(subject="alice", groups=("developers",), method="token")


def decision(request_id: str) -> DecisionRecord:
    """A decision as the gateway records it, with its real policy input document."""
    policy_input = PolicyInput(request_id, TARGET, IDENTITY, "127.0.0.1", datetime.now(UTC))
    return decision_record(
        request_id,
        received_at=policy_input.now,
        policy_revision="2026-11-25",
        policy_input=policy_input.json_text,
        input_shape=policy_input.shape,
    )


def completion(request_id: str) -> Completion:
    """A realistic small module zip's completion (35 kB)."""
    return completion_record(request_id, bytes=35_000, duration_ms=4.2, upstream="http://127.0.0.1")


def server_cpu_s(postgres: ThrowawayPostgres) -> float:
    """CPU seconds (user + system) of the postmaster and every backend so far."""
    assert postgres.base is not None
    postmaster = int((postgres.base / "data" / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        pid, ppid = int(proc.name), int(fields[1])
        if pid == postmaster or ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Run:
    requests: int
    seconds: float
    latencies_ms: list[float]
    client_cpu_s: float
    server_cpu_s: float


@dataclass
class Result:
    runs: list[Run] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return statistics.median(run.requests / run.seconds for run in self.runs)

    def latency(self, q: int) -> float:
        pooled = sorted(ms for run in self.runs for ms in run.latencies_ms)
        return statistics.quantiles(pooled, n=100)[q - 1] if len(pooled) > 1 else pooled[0]

    def cpu_us(self, pick: Callable[[Run], float]) -> float:
        return sum(pick(run) for run in self.runs) / sum(run.requests for run in self.runs) * 1e6


async def empty_table(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE audit_events")  # benchmark's own throwaway database
        await conn.execute("VACUUM ANALYZE audit_events")
        # An autovacuum worker counts as server CPU wherever it happens to start: it
        # would charge one run at random with work both mechanisms cause alike.
        await conn.execute("ALTER TABLE audit_events SET (autovacuum_enabled = false)")
    finally:
        await conn.close()


async def run_once(
    postgres: ThrowawayPostgres, insert: InsertRows, concurrency: int, duration_s: float
) -> Run:
    await empty_table(postgres.libpq_dsn())
    latencies: list[float] = []
    requests = 0
    async with AuditWriter(AsyncpgSink(postgres.dsn(), 3.0, insert=insert)) as writer:
        await writer.record(decision(uuid4().hex))  # connect and prepare outside the clock
        cpu0, server0 = time.process_time(), server_cpu_s(postgres)
        start = time.perf_counter()
        deadline = start + duration_s

        async def requester() -> None:
            nonlocal requests
            while time.perf_counter() < deadline:
                rid = uuid4().hex
                asked = time.perf_counter()
                await writer.record(decision(rid))
                latencies.append((time.perf_counter() - asked) * 1000)
                writer.complete_later(completion(rid))
                requests += 1

        await asyncio.gather(*(requester() for _ in range(concurrency)))
    # leaving the writer waited for the last completions: their cost is in the figures
    seconds = time.perf_counter() - start
    return Run(
        requests,
        seconds,
        latencies,
        time.process_time() - cpu0,
        server_cpu_s(postgres) - server0,
    )


async def batch_costs(postgres: ThrowawayPostgres, sizes: list[int], batches: int) -> None:
    """The second table: one statement of n rows, timed alone on a connection, per
    mechanism: where COPY starts to beat executemany (the sink's COPY_FROM_ROWS)."""
    await empty_table(postgres.libpq_dsn())
    conn = await asyncpg.connect(postgres.libpq_dsn())
    seq = 0
    print(f"\none statement of n rows, median µs over {batches} ({BASELINE} = 1.00)")
    print(f"{'n':>3} {'executemany':>11} {'copy':>6} {'copy x':>6}")
    try:
        for n in sizes:
            medians = {}
            for name in ("executemany", "copy"):
                took = []
                for _ in range(batches):
                    rows = []
                    for _ in range(n):
                        seq += 1
                        event = AuditEvent("bench", seq, decision(uuid4().hex))
                        rows.append(event_row(event, json_text=True))
                    start = time.perf_counter()
                    await MECHANISMS[name](conn, rows)
                    took.append(time.perf_counter() - start)
                medians[name] = statistics.median(took) * 1e6
            em, cp = medians["executemany"], medians["copy"]
            print(f"{n:>3} {em:>11.0f} {cp:>6.0f} {ratio(cp, em):>6}")
    finally:
        await conn.close()


def ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}" if base else "-"


def print_table(results: dict[tuple[str, int], Result], concurrencies: list[int]) -> None:
    header = (
        f"{'mechanism':<12} {'C':>3} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'py µs/req':>9} {'pg µs/req':>9} {'req/s x':>7} {'p99 x':>6} {'pg cpu x':>8}"
    )
    print(header)
    print("-" * len(header))
    for c in concurrencies:
        base = results[BASELINE, c]
        for name in MECHANISMS:
            r = results[name, c]
            pg = r.cpu_us(lambda run: run.server_cpu_s)
            print(
                f"{name:<12} {c:>3} {r.per_s:>8.0f} {r.latency(50):>7.2f} {r.latency(99):>7.2f} "
                f"{r.cpu_us(lambda run: run.client_cpu_s):>9.0f} {pg:>9.0f} "
                f"{ratio(r.per_s, base.per_s):>7} {ratio(r.latency(99), base.latency(99)):>6} "
                f"{ratio(pg, base.cpu_us(lambda run: run.server_cpu_s)):>8}"
            )


async def bench(
    postgres: ThrowawayPostgres, rounds: int, duration_s: float, concurrencies: list[int]
) -> dict[tuple[str, int], Result]:
    results = {(name, c): Result() for name in MECHANISMS for c in concurrencies}
    for round_no in range(rounds):
        names = list(MECHANISMS)
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        for c in concurrencies:
            for name in order:
                run = await run_once(postgres, MECHANISMS[name], c, duration_s)
                results[name, c].runs.append(run)
                print(
                    f"  round {round_no + 1} {name:<12} C={c:<3} {run.requests / run.seconds:8.0f}"
                    " req/s",
                    file=sys.stderr,
                )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--batches", type=int, default=300, help="per size, second table")
    args = parser.parse_args(argv)
    with ThrowawayPostgres() as postgres:
        migrate.upgrade(postgres.dsn())
        results = asyncio.run(bench(postgres, args.rounds, args.duration, args.concurrency))
        print(
            f"audit writer on PostgreSQL ({args.rounds} rounds of {args.duration:g} s; req/s the "
            "median run, latency over all runs; x: against executemany)"
        )
        print_table(results, args.concurrency)
        asyncio.run(batch_costs(postgres, [1, 2, 3, 4, 8, 16, 64], args.batches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
