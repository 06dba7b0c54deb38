"""Micro-benchmark: one policy decision, asked the ways modgate can ask it, of real OPA
servers on the bundled policies. One caller asks one decision at a time; per decision it
prints the wall time (and its ratio to a raw aiohttp POST over TCP, the floor), the CPU the
asking Python process spent, and the CPU the OPA process spent (from /proc, Linux). The
CPU columns hold up on a busy machine; the wall time does not.

    .venv/bin/python bench/decision_bench.py [--rounds 3] [--decisions 2000]

Paths:
- raw aiohttp POST, TCP: one shared session, no modgate code; OPA with no authorization;
- engine, TCP: modgate's OpaPolicyEngine, same OPA;
- engine, supervised: what `modgate serve` runs with no policy.opa_url: SupervisedOpa,
  on its private Unix socket;
- engine, TCP + allow-all authz: --authorization=basic with `allow := true`, the least any
  OPA authorization policy costs (OPA builds and evaluates the authz query per request);
- engine, TCP + token authz: the compose.yaml shape (--authentication=token
  --authorization=basic with deploy/opa/authz.rego, a bearer token on every request).
Every OPA runs with the production command line (gateway/policy/opa_command.py: store
optimised for reads, log level error), differing only in the arguments named above.
The rounds interleave the paths, so a noisy moment hits all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.goproxy.requests import ModuleRequest  # noqa: E402
from gateway.identity.base import Identity  # noqa: E402
from gateway.policy.decision import decision_from_reply  # noqa: E402
from gateway.policy.input import PolicyInput  # noqa: E402
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine  # noqa: E402
from gateway.policy.supervisor import SupervisedOpa  # noqa: E402
from tests.support.opa import OpaServer, find_opa  # noqa: E402

# Built by the gateway's own input builder, so this is exactly the shape OPA gets.
INPUT = PolicyInput(
    "sample",
    ModuleRequest("example.com/hello", "zip", "v1.0.0"),
    Identity(subject="alice", groups=("developers",), method="token"),
    "127.0.0.1",
    datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
)
DECISION_PATH = "modgate/decision"

Decide = Callable[[], Awaitable[object]]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` in seconds (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Sample:
    wall_us: float
    client_us: float
    opa_us: float


async def measure(decide: Decide, opa_pid: int, count: int) -> Sample:
    wall, client, opa = time.perf_counter(), time.process_time(), cpu_s(opa_pid)
    for _ in range(count):
        await decide()
    return Sample(
        (time.perf_counter() - wall) / count * 1e6,
        (time.process_time() - client) / count * 1e6,
        (cpu_s(opa_pid) - opa) / count * 1e6,
    )


async def main(rounds: int, count: int) -> None:
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="modgate-bench-") as scratch:
        token_file = Path(scratch) / "opa-token"
        token_file.write_text(token)
        token_opa = OpaServer(
            REPO / "policies",
            extra_args=(
                "--authentication=token",
                "--authorization=basic",
                f"--set-file=modgate.gateway_token={token_file}",
            ),
            extra_paths=(REPO / "deploy/opa",),
            token=token,
        )
        allow_all = Path(scratch) / "authz.rego"
        allow_all.write_text("package system.authz\n\nallow := true\n")
        allow_all_opa = OpaServer(
            REPO / "policies", extra_args=("--authorization=basic",), extra_paths=(allow_all,)
        )
        with OpaServer(REPO / "policies") as tcp_opa, allow_all_opa, token_opa:
            async with SupervisedOpa(find_opa(), REPO / "policies") as supervised:
                servers = {
                    "engine, TCP": (OpaEndpoint.for_url(tcp_opa.url), tcp_opa.pid),
                    "engine, supervised": (supervised.endpoint, supervised.pid or 0),
                    "engine, TCP + allow-all authz": (
                        OpaEndpoint.for_url(allow_all_opa.url),
                        allow_all_opa.pid,
                    ),
                    "engine, TCP + token authz": (
                        OpaEndpoint.for_url(token_opa.url, token=token),
                        token_opa.pid,
                    ),
                }
                results = await compare(rounds, count, tcp_opa, servers)
    report(rounds, count, results)


async def compare(
    rounds: int, count: int, tcp_opa: OpaServer, servers: dict[str, tuple[OpaEndpoint, int]]
) -> dict[str, list[Sample]]:
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        url = f"{tcp_opa.url}/v1/data/{DECISION_PATH}"

        async def raw() -> object:
            async with session.post(url, json={"input": INPUT.document()}) as response:
                return decision_from_reply(await response.json())

        paths: dict[str, tuple[Decide, int]] = {"raw aiohttp POST, TCP": (raw, tcp_opa.pid)}
        for name, (endpoint, pid) in servers.items():
            engine = OpaPolicyEngine(endpoint, DECISION_PATH, 5, 0)
            await stack.enter_async_context(engine)
            paths[name] = (functools.partial(engine.decide, INPUT), pid)
        for decide, pid in paths.values():
            await measure(decide, pid, 200)  # warm up every path
        results: dict[str, list[Sample]] = {name: [] for name in paths}
        for _ in range(rounds):
            for name, (decide, pid) in paths.items():
                results[name].append(await measure(decide, pid, count))
        return results


def report(rounds: int, count: int, results: dict[str, list[Sample]]) -> None:
    base = statistics.median(s.wall_us for s in results["raw aiohttp POST, TCP"])
    print(f"µs per decision, median of {rounds} rounds of {count}")
    print(f"{'path':<30} {'wall':>7} {'ratio':>6} {'client CPU':>11} {'OPA CPU':>8}")
    for name, samples in results.items():
        wall = statistics.median(s.wall_us for s in samples)
        client = statistics.median(s.client_us for s in samples)
        opa = statistics.median(s.opa_us for s in samples)
        print(f"{name:<30} {wall:>7.0f} {wall / base:>6.2f} {client:>11.0f} {opa:>8.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.decisions))
