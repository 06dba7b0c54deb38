"""Run the Alembic migrations shipped with modgate against a database URL."""

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from ..errors import ConfigError
from ..resources import migrations_dir


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring ``database_url`` to ``revision``. Synchronous: call it outside an event loop.

    Raises ConfigError, naming the database (without its password), when it cannot.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
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
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    command.downgrade(config, revision)
