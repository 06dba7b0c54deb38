"""A budget of bad credentials per client address, so guessing costs the guesser.

Every bad credential (a 401 from identification) takes one unit from its client's token
bucket; the bucket holds ``per_minute`` units and refills continuously at ``per_minute``
a minute. While it holds less than one unit, a request that presents credentials is
refused with 429 before any identifier (or the token store) sees it. Requests without
credentials are never charged, and neither are the 429s themselves, so a client that
stops guessing is served again as soon as its bucket refills.

    failures = FailedAuthLimiter(per_minute=30)
    failures.check("203.0.113.7")    # raises TooManyFailuresError when the budget is spent
    failures.charge("203.0.113.7")   # after a 401

The go command retries every https 4xx once (cmd/go/internal/web/http.go), so each
refusal it sees costs it two units. Requests sent all at once are all checked before any
fails; the bucket may then go into debt, at most one full budget deep, which keeps the
lock-out after a burst to about a minute.

IPv6 clients are counted per /64, the block one host or one site usually holds; IPv4
addresses (also when mapped into IPv6) one by one. The table is bounded: beyond
``max_clients`` the address charged longest ago is forgotten. The state lives in one
process: with several workers or replicas each counts on its own.
"""

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TooManyFailuresError

MAX_CLIENTS = 10_000
IPV6_PREFIX = 64


def client_key(address: str) -> str:
    """The unit a budget belongs to: the IPv4 address, or the IPv6 /64 it is in."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an IP (a test client, a unix socket): counted as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/{IPV6_PREFIX}", strict=False))
    return str(ip)


@dataclass(slots=True)
class _Bucket:
    units: float
    updated: float


class FailedAuthLimiter:
    """Token buckets of bad credentials, one per client key; ``per_minute`` 0 disables."""

    def __init__(
        self,
        per_minute: int,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._max_clients = max_clients
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}  # least recently charged first

    @property
    def enabled(self) -> bool:
        return self._capacity > 0

    def _units(self, bucket: _Bucket, now: float) -> float:
        return min(self._capacity, bucket.units + (now - bucket.updated) * self._per_second)

    def check(self, address: str) -> None:
        """Raise TooManyFailuresError when ``address`` has no bad credential left to spend."""
        if not self.enabled:
            return
        key = client_key(address)
        bucket = self._buckets.get(key)
        if bucket is None:
            return
        units = self._units(bucket, self._clock())
        if units >= self._capacity:
            del self._buckets[key]  # refilled: as good as never seen, and the table shrinks
            return
        if units >= 1:
            return
        retry_after_s = max(1, math.ceil((1 - units) / self._per_second))
        raise TooManyFailuresError(
            f"too many failed authentications from {key}; retry in {retry_after_s} s",
            retry_after_s,
        )

    def charge(self, address: str) -> None:
        """Take one unit from ``address``'s budget for a bad credential it sent."""
        if not self.enabled:
            return
        key = client_key(address)
        now = self._clock()
        bucket = self._buckets.pop(key, None)  # re-inserted below: newest at the end
        units = self._capacity if bucket is None else self._units(bucket, now)
        self._buckets[key] = _Bucket(max(units - 1, -self._capacity), now)
        while len(self._buckets) > self._max_clients:
            del self._buckets[next(iter(self._buckets))]

    def __len__(self) -> int:
        """How many client keys are being counted (bounded by ``max_clients``)."""
        return len(self._buckets)
