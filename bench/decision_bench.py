"""Micro-benchmark: one policy decision through modgate's OpaPolicyEngine against a raw
aiohttp POST on a shared session, both to the same real OPA server on the bundled
policies. Prints µs per decision and the ratio to the raw baseline.

    .venv/bin/python bench/decision_bench.py [--rounds 3] [--decisions 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.goproxy.requests import ModuleRequest  # noqa: E402
from gateway.identity.base import Identity  # noqa: E402
from gateway.policy.decision import decision_from_reply  # noqa: E402
from gateway.policy.input import policy_input  # noqa: E402
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine  # noqa: E402
from tests.support.opa import OpaServer  # noqa: E402

# Built by the gateway's own input builder, so this is exactly the shape OPA gets.
INPUT = policy_input(
    "sample",
    ModuleRequest("example.com/hello", "zip", "v1.0.0"),
    Identity(subject="alice", groups=("developers",), method="token"),
    "127.0.0.1",
    datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
)


async def per_decision_us(decide: object, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await decide()  # type: ignore[operator]
    return (time.perf_counter() - start) / count * 1e6


async def main(rounds: int, count: int) -> None:
    with OpaServer(REPO / "policies") as opa:
        async with (
            OpaPolicyEngine(OpaEndpoint.for_url(opa.url), "modgate/decision", 5, 0) as engine,
            aiohttp.ClientSession() as session,
        ):
            url = f"{opa.url}/v1/data/modgate/decision"

            async def raw() -> None:
                async with session.post(url, json={"input": INPUT}) as response:
                    decision_from_reply(await response.json())

            async def client() -> None:
                await engine.decide(INPUT)

            await per_decision_us(raw, 200)  # warm up both paths
            await per_decision_us(client, 200)
            results: dict[str, list[float]] = {"raw aiohttp POST": [], "OpaPolicyEngine": []}
            for _ in range(rounds):
                results["raw aiohttp POST"].append(await per_decision_us(raw, count))
                results["OpaPolicyEngine"].append(await per_decision_us(client, count))
    base = statistics.median(results["raw aiohttp POST"])
    print(f"{'path':<20} {'µs/decision (median of ' + str(rounds) + ')':>28} {'ratio':>7}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<20} {median:>28.0f} {median / base:>7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decisions", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.decisions))
