"""Schema revisions: which ones this library knows, and how to bring a database up to the newest.

Opening a store whose schema is current costs one query: alembic (and SQLAlchemy) are imported only
when a database actually needs an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from ._errors import SchemaVersionError

if TYPE_CHECKING:
    from sqlalchemy import Connection

VERSION_TABLE: Final = "kvstore_alembic_version"
"""kvstore's own alembic version table, so an application's alembic_version is never touched."""

REVISIONS: Final = ("0001", "0002", "0003")
"""Every revision in migrations/versions, oldest first; a test holds this equal to alembic's history."""

HEAD: Final = REVISIONS[-1]


def needs_upgrade(found: Sequence[str]) -> bool:
    """Whether a database at revisions ``found`` needs an upgrade; refuse one this library cannot know."""
    unknown = sorted(set(found) - set(REVISIONS))
    if unknown:
        raise SchemaVersionError(
            f"the database schema is at revision {', '.join(unknown)}, which this kvstore does not know "
            f"(it knows up to {HEAD}): it was written by a newer kvstore. The database was left untouched."
        )
    return list(found) != [HEAD]


def upgrade(connection: Connection) -> None:
    """Upgrade the database behind ``connection`` to ``HEAD`` inside the caller's transaction."""
    from importlib import resources  # costs ~8 ms at import (tempfile, shutil...): only a migration needs it

    from alembic import command
    from alembic.config import Config

    config = Config()
    location = str(resources.files("kvstore._migrations"))
    config.set_main_option("script_location", location.replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    command.upgrade(config, HEAD)
