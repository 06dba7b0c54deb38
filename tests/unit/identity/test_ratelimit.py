"""The budget of bad credentials per client: a token bucket refilled continuously."""

import pytest

from gateway.errors import TooManyFailuresError
from gateway.identity.ratelimit import FailedAuthLimiter, client_key


class Clock:
    """Time the test moves by hand (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def spend(limiter: FailedAuthLimiter, address: str, failures: int) -> None:
    for _ in range(failures):
        limiter.check(address)
        limiter.charge(address)


def test_a_full_budget_of_failures_passes_and_the_next_is_refused(clock: Clock) -> None:
    limiter = FailedAuthLimiter(30, clock=clock)
    spend(limiter, "203.0.113.7", 30)
    with pytest.raises(TooManyFailuresError) as refused:
        limiter.check("203.0.113.7")
    assert refused.value.status == 429 and refused.value.code == "too_many_failures"
    assert refused.value.retry_after_s == 2  # one unit refills in 60/30 s
    assert refused.value.reason == (
        "too many failed authentications from 203.0.113.7; retry in 2 s"
    )


def test_the_budget_refills_continuously(clock: Clock) -> None:
    limiter = FailedAuthLimiter(30, clock=clock)
    spend(limiter, "203.0.113.7", 30)
    clock.now += 1.9
    with pytest.raises(TooManyFailuresError):
        limiter.check("203.0.113.7")
    clock.now += 0.1
    limiter.check("203.0.113.7")  # one unit back after 2 s


def test_other_clients_keep_their_own_budget(clock: Clock) -> None:
    limiter = FailedAuthLimiter(3, clock=clock)
    spend(limiter, "203.0.113.7", 3)
    limiter.check("203.0.113.8")


def test_a_burst_is_charged_in_full_but_locks_out_for_about_a_minute_at_most(
    clock: Clock,
) -> None:
    limiter = FailedAuthLimiter(30, clock=clock)
    for _ in range(500):  # all checked before any failed, as concurrent requests are
        limiter.charge("203.0.113.7")
    with pytest.raises(TooManyFailuresError) as refused:
        limiter.check("203.0.113.7")
    assert refused.value.retry_after_s == 62  # (30 units of debt + 1) at 0.5 a second
    clock.now += 62
    limiter.check("203.0.113.7")


def test_zero_per_minute_disables_the_limit(clock: Clock) -> None:
    limiter = FailedAuthLimiter(0, clock=clock)
    spend(limiter, "203.0.113.7", 1000)
    assert len(limiter) == 0


def test_a_refilled_client_is_forgotten(clock: Clock) -> None:
    limiter = FailedAuthLimiter(30, clock=clock)
    spend(limiter, "203.0.113.7", 5)
    clock.now += 10
    limiter.check("203.0.113.7")
    assert len(limiter) == 0


def test_the_table_of_clients_is_bounded_and_forgets_the_oldest_first(clock: Clock) -> None:
    limiter = FailedAuthLimiter(1, max_clients=3, clock=clock)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        limiter.charge(address)
    limiter.charge("10.0.0.1")  # charged again: now the newest
    limiter.charge("10.0.0.4")
    assert len(limiter) == 3
    limiter.check("10.0.0.2")  # the oldest, forgotten
    for address in ("10.0.0.1", "10.0.0.3", "10.0.0.4"):
        with pytest.raises(TooManyFailuresError):
            limiter.check(address)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
    ids=["ipv4", "ipv6", "ipv6-same-64", "ipv4-mapped", "not-an-ip"],
)
def test_ipv6_clients_share_a_budget_per_64(address: str, key: str) -> None:
    assert client_key(address) == key
