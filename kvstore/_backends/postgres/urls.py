"""PostgreSQL URLs: the libpq form of an SQLAlchemy-style URL, and a form with its password masked."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["conninfo", "display_url"]

_PASSWORD: Final = re.compile(r"(://[^:/@]*:)[^@]*@")
_PASSWORD_PARAMETER: Final = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)  # libpq takes one there too


def display_url(url: str) -> str:
    """``url`` with its password masked, fit for messages, ``info()`` and ``repr``."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))


def conninfo(url: str) -> str:
    """The libpq URI for an SQLAlchemy-style URL (``postgresql+psycopg://`` becomes ``postgresql://``)."""
    scheme, rest = url.split("://", 1)
    if scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
        raise AssertionError(scheme)  # _store._parse_target routes only these here
    return "postgresql://" + rest
