"""API tokens: unknown ids are remembered as unknown, and refusals never echo what was sent.

The store is the real SqlTokenStore on a SQLite audit database built by the migrations;
``CountingStore`` only counts the lookups that reach it.
"""

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import migrate
from gateway.audit.database import open_engine
from gateway.audit.tokens import SqlTokenStore
from gateway.errors import IdentityError
from gateway.identity.base import Credentials
from gateway.identity.proof import RequestProof
from gateway.identity.tokens import StoredToken, TokenIdentifier, new_token


class CountingStore:
    """The real store, with a count of the lookups that reached it."""

    def __init__(self, store: SqlTokenStore) -> None:
        self.store = store
        self.finds = 0

    async def find(self, token_id: str) -> StoredToken | None:
        self.finds += 1
        return await self.store.find(token_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A SQLite audit database with the schema the migrations build (run outside a loop)."""
    url = f"sqlite+aiosqlite:///{tmp_path}/audit.db"
    migrate.upgrade(url)
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[CountingStore]:
    engine = open_engine(database_url)
    try:
        yield CountingStore(SqlTokenStore(engine))
    finally:
        await engine.dispose()


def presented(credentials: Credentials) -> RequestProof:
    """A request presenting ``credentials`` as the go command would: Bearer, or Basic."""
    if credentials.login is None:
        return RequestProof((f"Bearer {credentials.secret}",), "192.0.2.1")
    pair = f"{credentials.login}:{credentials.secret}".encode()
    return RequestProof((f"Basic {base64.b64encode(pair).decode()}",), "192.0.2.1")


def unknown(n: int) -> Credentials:
    return Credentials(secret=f"mgt_{n:016x}_" + "0" * 64)


async def refused(identifier: TokenIdentifier, credentials: Credentials) -> IdentityError:
    with pytest.raises(IdentityError) as caught:
        await identifier.identify(presented(credentials))
    return caught.value


async def test_a_repeated_unknown_id_reaches_the_store_once(store: CountingStore) -> None:
    identifier = TokenIdentifier(store, cache_s=0, negative_cache_s=30)
    for _ in range(20):
        assert (await refused(identifier, unknown(1))).reason == "unknown or wrong API token"
    assert store.finds == 1


async def test_an_unknown_id_is_asked_again_once_its_entry_expires(store: CountingStore) -> None:
    clock = Clock()
    identifier = TokenIdentifier(store, cache_s=0, negative_cache_s=30, clock=clock)
    await refused(identifier, unknown(1))
    clock.now += 29.9
    await refused(identifier, unknown(1))
    assert store.finds == 1
    clock.now += 0.1
    await refused(identifier, unknown(1))
    assert store.finds == 2


async def test_zero_negative_cache_asks_the_store_every_time(store: CountingStore) -> None:
    identifier = TokenIdentifier(store, cache_s=0, negative_cache_s=0)
    for _ in range(3):
        await refused(identifier, unknown(1))
    assert store.finds == 3


async def test_the_negative_cache_is_bounded_and_forgets_the_oldest_first(
    store: CountingStore,
) -> None:
    identifier = TokenIdentifier(store, cache_s=0, negative_cache_s=30, negative_entries=3)
    for n in (1, 2, 3, 4):
        await refused(identifier, unknown(n))
    assert store.finds == 4
    for n in (2, 3, 4):
        await refused(identifier, unknown(n))
    assert store.finds == 4
    await refused(identifier, unknown(1))  # evicted by 4
    assert store.finds == 5


async def test_a_token_made_after_unknown_ids_were_cached_works_at_once(
    store: CountingStore,
) -> None:
    identifier = TokenIdentifier(store, cache_s=0, negative_cache_s=30)
    for n in range(100):
        await refused(identifier, unknown(n))
    made = new_token("alice", ("developers",))
    await store.store.add(made.stored)
    identity = await identifier.identify(presented(Credentials(secret=made.secret_token)))
    assert identity is not None and identity.subject == "alice"


async def test_a_basic_user_name_that_is_not_the_subject_is_refused_without_echo(
    store: CountingStore,
) -> None:
    made = new_token("alice", ("developers",))
    await store.store.add(made.stored)
    identifier = TokenIdentifier(store, cache_s=0, negative_cache_s=30)
    pasted = Credentials(secret=made.secret_token, login=made.secret_token)
    error = await refused(identifier, pasted)
    assert error.reason == "the Basic user name does not match the token's subject"


async def test_a_token_is_refused_from_its_expiry_on_and_works_before(
    store: CountingStore,
) -> None:
    """On the real store (SQLite gives timestamps back without a zone: read as UTC)."""
    now = datetime.now(UTC)
    expired = new_token("carol", ("developers",), now - timedelta(seconds=1))
    valid = new_token("dave", ("developers",), now + timedelta(hours=1))
    for made in (expired, valid):
        await store.store.add(made.stored)
    identifier = TokenIdentifier(store, cache_s=0)
    with pytest.raises(IdentityError, match="API token expired at") as caught:
        await identifier.identify(presented(Credentials(expired.secret_token)))
    assert caught.value.status == 401
    identity = await identifier.identify(presented(Credentials(valid.secret_token)))
    assert identity is not None and identity.subject == "dave"
    (found,) = [s for s, _ in await store.store.all() if s.token_id == valid.stored.token_id]
    assert found.expires_at == valid.stored.expires_at.replace(
        microsecond=found.expires_at.microsecond
    )  # type: ignore[union-attr]
