"""Micro-benchmark: what a long blacklist costs a policy decision (issue 11: with 10,000
entries a decision should cost within 10 % of one with 10). Two real OPA servers, each on a
copy of the repo's policies/ whose config/data.json has the shipped revision, private, ci
and blacklist_kinds but a blacklist of N entries (N = 10 and N = 10,000). One caller asks
one document at a time through modgate's OpaPolicyEngine, with inputs built by the
gateway's PolicyInput; per ask it prints the wall time, the CPU the asking Python process
spent and the CPU the OPA process spent (from /proc, Linux), and for each row the ratio of
N = 10,000 to N = 10. The CPU columns hold up on a busy machine; the wall time does not.

    .venv/bin/python bench/blacklist_bench.py [--rounds 3] [--decisions 200]   # about 1.5 min
    .venv/bin/python bench/blacklist_bench.py --rounds 1 --decisions 50   # a smoke check

Rows, each asked of both servers:
- allowed, no entries: modgate/decision for example.com/hello zip v1.0.0, a module the
  blacklist does not name (allowed);
- denied, blacklisted: modgate/decision for example.com/insecure zip v1.0.1, the shipped
  entry (denied);
- list, 100 versions: modgate/hidden_versions for example.com/insecure's @v/list of 100
  versions (v1.0.0 to v1.0.99), asked by the gateway's own visible_list (it hides v1.0.1).

The generated entries are example.net/mod{i} with "versions": ["v1.0.{i % 50}"], a reason
and a ticket, three range entries (introduced and/or fixed, example.net/range{j}), and the
shipped example.com/insecure entry LAST: finding an entry's index counts the line breaks
before it, so last is the dearest place. Both data sets are checked before anything is
measured: data.modgate.config_ok must be true and data.modgate.data_errors empty, and every
row must answer as above. Every OPA runs with the production command line
(gateway/policy/opa_command.py, via tests/support/opa.py). The rounds interleave the rows
and both servers, so a noisy moment hits all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.decision_bench import Sample, measure  # noqa: E402  (the same timing)
from gateway.goproxy.requests import ModuleRequest  # noqa: E402
from gateway.identity.base import Identity  # noqa: E402
from gateway.policy.input import PolicyInput  # noqa: E402
from gateway.policy.listing import visible_list  # noqa: E402
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine  # noqa: E402
from tests.support.opa import OpaServer  # noqa: E402

SIZES = (10, 10_000)
DECISION_PATH = "modgate/decision"
PACKAGE = "modgate"
SHIPPED_DATA = REPO / "policies" / "modgate" / "config" / "data.json"
KEPT_MODULE = "example.com/insecure"
WARM_UP = 20  # asks per path before the rounds: at N = 10,000 each costs tens of ms
START_TIMEOUT_S = 60.0  # OPA parses 10,000 entries before it answers /health

IDENTITY = Identity(subject="alice", groups=("developers",), method="token")
NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


def policy_input(module: str, kind: str, version: str | None) -> PolicyInput:
    """Built by the gateway's own input builder, so this is exactly the shape OPA gets."""
    return PolicyInput("sample", ModuleRequest(module, kind, version), IDENTITY, "127.0.0.1", NOW)


ALLOWED = policy_input("example.com/hello", "zip", "v1.0.0")
DENIED = policy_input(KEPT_MODULE, "zip", "v1.0.1")
LISTED = policy_input(KEPT_MODULE, "list", None)
LIST_BODY = "".join(f"v1.0.{i}\n" for i in range(100)).encode()
ROWS = ("allowed, no entries", "denied, blacklisted", "list, 100 versions")

Ask = Callable[[], Awaitable[object]]


def blacklist(size: int, kept: dict[str, object]) -> list[dict[str, object]]:
    """``size`` entries: generated ones, three ranges, and the shipped ``kept`` entry last."""
    ranges: list[dict[str, object]] = [
        {"introduced": "v1.2.0", "fixed": "v1.3.0"},
        {"introduced": "v2.0.0"},
        {"fixed": "v0.9.0"},
    ]
    entries: list[dict[str, object]] = [
        {"module": f"example.net/mod{i}", "versions": [f"v1.0.{i % 50}"]}
        for i in range(size - len(ranges) - 1)
    ]
    entries += [{"module": f"example.net/range{j}", **bounds} for j, bounds in enumerate(ranges)]
    for i, entry in enumerate(entries):
        entry["reason"] = f"benchmark entry {i}"
        entry["ticket"] = f"BENCH-{i}"
    return [*entries, kept]


def write_policies(scratch: Path, size: int) -> Path:
    """A copy of policies/ whose data holds a blacklist of ``size`` entries."""
    shipped = json.loads(SHIPPED_DATA.read_text())
    kept = next(entry for entry in shipped["blacklist"] if entry["module"] == KEPT_MODULE)
    data = {key: shipped[key] for key in ("revision", "private", "ci", "blacklist_kinds")}
    data["blacklist"] = blacklist(size, kept)
    assert len(data["blacklist"]) == size
    policies = scratch / f"blacklist-{size}" / "policies"
    shutil.copytree(REPO / "policies", policies)
    (policies / "modgate" / "config" / "data.json").write_text(json.dumps(data, indent=1))
    return policies


async def check(engine: OpaPolicyEngine, size: int) -> None:
    """Fail loudly unless the data is valid and every row answers as it should."""
    if await engine.document(f"{PACKAGE}/config_ok") is not True:
        raise SystemExit(f"N={size}: data.modgate.config_ok is not true: the data is invalid")
    errors = await engine.document(f"{PACKAGE}/data_errors")
    if errors != []:
        raise SystemExit(f"N={size}: data.modgate.data_errors: {errors}")
    allowed, denied = await engine.decide(ALLOWED), await engine.decide(DENIED)
    if not allowed.allowed:
        raise SystemExit(f"N={size}: example.com/hello was denied: {allowed.reasons}")
    if denied.allowed or not any("blacklisted" in reason for reason in denied.reasons):
        raise SystemExit(f"N={size}: {KEPT_MODULE}@v1.0.1 was not blacklisted: {denied}")
    _, hidden = await visible_list(engine, PACKAGE, LISTED, LIST_BODY)
    if hidden != ("v1.0.1",):
        raise SystemExit(f"N={size}: hidden_versions hid {hidden}, not v1.0.1")


def asks(engine: OpaPolicyEngine) -> dict[str, Ask]:
    async def listing() -> object:
        return await visible_list(engine, PACKAGE, LISTED, LIST_BODY)

    return {
        ROWS[0]: lambda: engine.decide(ALLOWED),
        ROWS[1]: lambda: engine.decide(DENIED),
        ROWS[2]: listing,
    }


async def main(rounds: int, count: int) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="modgate-bench-") as scratch,
        contextlib.ExitStack() as servers,
    ):
        opas: dict[int, OpaServer] = {}
        for size in SIZES:
            log = Path(scratch) / f"opa-{size}.log"
            opa = OpaServer(write_policies(Path(scratch), size), log_path=log)
            servers.callback(opa.stop)
            opas[size] = opa.start(timeout_s=START_TIMEOUT_S)
        results = await compare(rounds, count, opas)
    report(rounds, count, results)


async def compare(
    rounds: int, count: int, opas: dict[int, OpaServer]
) -> dict[tuple[str, int], list[Sample]]:
    async with contextlib.AsyncExitStack() as stack:
        paths: dict[tuple[str, int], tuple[Ask, int]] = {}
        for size, opa in opas.items():
            engine = OpaPolicyEngine(OpaEndpoint.for_url(opa.url), DECISION_PATH, 30, 0)
            await stack.enter_async_context(engine)
            await check(engine, size)
            for row, ask in asks(engine).items():
                paths[(row, size)] = (ask, opa.pid)
        for ask, pid in paths.values():
            await measure(ask, pid, WARM_UP)  # warm up every path
        results: dict[tuple[str, int], list[Sample]] = {key: [] for key in paths}
        for _ in range(rounds):
            for key, (ask, pid) in paths.items():
                results[key].append(await measure(ask, pid, count))
        return results


def report(rounds: int, count: int, results: dict[tuple[str, int], list[Sample]]) -> None:
    print(f"µs per decision, median of {rounds} rounds of {count}; ratios: N / N={SIZES[0]}")
    print(
        f"{'row':<22} {'N':>6} {'wall':>7} {'ratio':>6} {'client CPU':>11} "
        f"{'OPA CPU':>8} {'ratio':>6}"
    )
    for row in ROWS:
        base_wall = statistics.median(s.wall_us for s in results[(row, SIZES[0])])
        base_opa = statistics.median(s.opa_us for s in results[(row, SIZES[0])])
        for size in SIZES:
            samples = results[(row, size)]
            wall = statistics.median(s.wall_us for s in samples)
            client = statistics.median(s.client_us for s in samples)
            opa = statistics.median(s.opa_us for s in samples)
            print(
                f"{row:<22} {size:>6} {wall:>7.0f} {wall / base_wall:>6.2f} {client:>11.0f} "
                f"{opa:>8.0f} {opa / base_opa if base_opa else float('nan'):>6.2f}"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decisions", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.decisions))
