"""Run the Alembic migrations of ``migrations/`` against a database URL."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from ..errors import ConfigError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring ``database_url`` to ``revision``. Synchronous: call it outside an event loop.

    Raises ConfigError, naming the database (without its password), when it cannot.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    try:
        command.upgrade(config, revision)
    except Exception as exc:  # driver, network or schema: the gateway cannot start
        shown = make_url(database_url).render_as_string(hide_password=True)
        raise ConfigError(
            f"audit database {shown}: migration failed: {type(exc).__name__}: {exc}"
        ) from exc


def downgrade(database_url: str, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    command.downgrade(config, revision)
