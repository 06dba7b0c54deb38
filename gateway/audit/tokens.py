"""SQL for API tokens: the TokenStore the identity stage reads, and the CLI's writes."""

import asyncio
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import IdentityUnavailableError
from ..identity.tokens import StoredToken
from .models import api_tokens
from .revocations import notify_revoked


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _stored(row: object) -> StoredToken:
    m = row._mapping  # type: ignore[attr-defined]
    return StoredToken(
        token_id=m["token_id"],
        subject=m["subject"],
        groups=tuple(m["groups"]),  # a JSON array, decoded by the column type
        salt=m["salt"],
        digest=m["digest"],
        revoked=bool(m["revoked"]),
        expires_at=_utc(m["expires_at"]),
    )


class SqlTokenStore:
    """API tokens in the audit database.

    ``find`` gives up after ``timeout_s`` (pool wait, connect and query together): a
    stalled database refuses requests with 503 instead of holding them."""

    def __init__(self, engine: AsyncEngine, timeout_s: float | None = None) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    async def find(self, token_id: str) -> StoredToken | None:
        try:
            async with asyncio.timeout(self._timeout_s), self._engine.connect() as conn:
                result = await conn.execute(
                    select(api_tokens).where(api_tokens.c.token_id == token_id)
                )
                row = result.first()
        except TimeoutError as exc:
            raise IdentityUnavailableError(
                f"token store did not answer within {self._timeout_s:g} s"
            ) from exc
        except Exception as exc:  # a store we cannot read proves no one (fail closed)
            raise IdentityUnavailableError("token store unavailable") from exc
        return None if row is None else _stored(row)

    async def add(self, token: StoredToken) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                api_tokens.insert().values(
                    token_id=token.token_id,
                    subject=token.subject,
                    groups=list(token.groups),
                    salt=token.salt,
                    digest=token.digest,
                    created_at=datetime.now(UTC),
                    revoked=False,
                    expires_at=token.expires_at,
                )
            )

    async def all(self) -> list[tuple[StoredToken, datetime]]:
        async with self._engine.connect() as conn:
            result = await conn.execute(select(api_tokens).order_by(api_tokens.c.created_at))
            return [(_stored(row), row.created_at) for row in result]

    async def revoke(self, token_id: str) -> bool:
        """Mark a token revoked; False when there is no such token."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id)
                .values(revoked=True, revoked_at=datetime.now(UTC))
            )
            if result.rowcount:
                await notify_revoked(conn, token_id)  # every gateway forgets it at commit
            return bool(result.rowcount)
