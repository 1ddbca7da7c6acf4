"""Pure checks of caller input: keys, namespaces, prefixes, expiries, durations and set options.

Everything here runs before a transaction opens, so a rejected call never touches the database.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final, TypeAlias

from ._errors import (
    InvalidContentTypeError,
    InvalidKeyError,
    InvalidNamespaceError,
    InvalidOptionsError,
    InvalidTTLError,
    InvalidVersionstampError,
)
from ._shown import shown

# The units of the durations kvstore takes, named so that signatures and help() say them. Wherever a
# duration is taken, a datetime.timedelta is taken too, and means what it says whatever the unit.
Seconds: TypeAlias = float
Milliseconds: TypeAlias = float

MAX_KEY_LENGTH: Final = 256
MAX_NAMESPACE_LENGTH: Final = 64
MIN_TTL_MS: Final = 60_000
MAX_TTL_MS: Final = 31_536_000_000  # 365 days
MIN_TTL_US: Final = MIN_TTL_MS * 1000
MAX_TTL_US: Final = MAX_TTL_MS * 1000
MAX_CONTENT_TYPE_LENGTH: Final = 255
# A larger count of rows (a page, a batch) means "all": SQLite's integers end at 2**63 - 1.
MAX_ROWS: Final = 2**62

# ASCII only: \w would admit every Unicode letter. Segments are non-empty and '/' only separates them.
_KEY = re.compile(r"[A-Za-z0-9_.\-]+(?:/[A-Za-z0-9_.\-]+)*")
# The same rule as _KEY plus the check of '.' and '..' segments, in one match: the fast path of check_key.
_SEGMENT = r"(?!\.\.?(?:/|\Z))[A-Za-z0-9_.\-]+"
_VALID_KEY = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*").fullmatch
_PREFIX = re.compile(r"[A-Za-z0-9_.\-/]*")
_NAMESPACE = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_VERSIONSTAMP = re.compile(r"[0-9a-f]{20}")
# RFC 6838 restricted names, then optional ";name=value" parameters (RFC 9110 tokens or quoted strings).
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~\-]+"
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+\-]{0,126}"
    rf"(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|\"[\x20\x21\x23-\x5b\x5d-\x7e]*\"))*"
)


def check_keys(keys: object) -> list[str]:
    """Return ``keys`` (an iterable of keys, not a single string) as a list, each key checked."""
    # The type, then isinstance only when it matches: isinstance alone would ask a non-matching object its __class__.
    if issubclass(type(keys), str | bytes) or not (issubclass(type(keys), Iterable) and isinstance(keys, Iterable)):
        raise InvalidOptionsError("keys must be an iterable of key strings, not a single string or object")
    return list(map(check_key, keys))


# Keys found valid lately: a dict lookup instead of a regex match for the keys an application uses over and
# over. Only exact str objects enter (a str subclass could compare equal and differ); cleared whole when full.
_VALID_KEYS: dict[str, None] = {}
_VALID_KEYS_MAX: Final = 65_536


def check_key(key: object) -> str:
    """Return ``key`` if it is a valid key, else raise InvalidKeyError."""
    if type(key) is str:
        if key in _VALID_KEYS:
            return key
        if len(key) <= MAX_KEY_LENGTH and _VALID_KEY(key) is not None:
            if len(_VALID_KEYS) >= _VALID_KEYS_MAX:
                _VALID_KEYS.clear()
            _VALID_KEYS[key] = None
            return key  # one match decides a valid key; what is wrong with another is found out below
    # Otherwise find out what is wrong, to say so.
    if type(key) is not str:
        raise InvalidKeyError(f"key must be a str, not {type(key).__name__}")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidKeyError(f"key must be 1 to {MAX_KEY_LENGTH} characters (got {len(key)})")
    if _KEY.fullmatch(key) is None:
        raise InvalidKeyError(
            f"key {key!r} may contain only letters, digits, '-', '_', '.' and '/' between non-empty segments"
        )
    if "." in key and any(segment in (".", "..") for segment in key.split("/")):
        raise InvalidKeyError(f"key {key!r} has a '.' or '..' segment")
    return key


def check_prefix(prefix: object, name: str = "prefix") -> str:
    """Return ``prefix`` if it can begin a key (or bound a key range); "" matches every key."""
    if type(prefix) is not str:
        raise InvalidKeyError(f"{name} must be a str, not {type(prefix).__name__}")
    if len(prefix) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"{name} must be at most {MAX_KEY_LENGTH} characters (got {len(prefix)})")
    if _PREFIX.fullmatch(prefix) is None:
        raise InvalidKeyError(f"{name} {prefix!r} may contain only letters, digits, '-', '_', '.' and '/'")
    return prefix


def check_namespace(name: object) -> str:
    """Return ``name`` if it is a valid namespace name, else raise InvalidNamespaceError."""
    if type(name) is not str:
        raise InvalidNamespaceError(f"namespace must be a str, not {type(name).__name__}")
    if _NAMESPACE.fullmatch(name) is None:
        raise InvalidNamespaceError(
            f"namespace {shown(name)} must be 1 to {MAX_NAMESPACE_LENGTH} letters, digits, '-' or '_'"
        )
    return name


def check_versionstamp(versionstamp: object, option: str = "if_versionstamp") -> str:
    """Return ``versionstamp`` if it is 20 lowercase hex characters."""
    if type(versionstamp) is not str or _VERSIONSTAMP.fullmatch(versionstamp) is None:
        raise InvalidVersionstampError(
            f"{option} must be a 20-character lowercase hex string, got {shown(versionstamp)}"
        )
    return versionstamp


def check_content_type(content_type: object) -> str:
    """Return ``content_type`` if it looks like ``type/subtype`` with optional parameters."""
    if type(content_type) is not str:
        raise InvalidContentTypeError(f"content_type must be a str, not {type(content_type).__name__}")
    if len(content_type) > MAX_CONTENT_TYPE_LENGTH or _CONTENT_TYPE.fullmatch(content_type) is None:
        raise InvalidContentTypeError(f"content_type {shown(content_type)} does not look like type/subtype")
    return content_type


def check_flag(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; 1, 'yes' or None are not."""
    if type(value) is not bool:
        raise InvalidOptionsError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def ttl_from_expire_in(expire_in: object) -> int:
    """Validate ``expire_in`` (a timedelta, or a number of milliseconds) and return the TTL in microseconds."""
    if type(expire_in) not in (int, float):
        if issubclass(type(expire_in), timedelta) and isinstance(expire_in, timedelta):
            ttl_us = timedelta_us(expire_in)
            if not MIN_TTL_US <= ttl_us <= MAX_TTL_US:
                raise InvalidTTLError(f"expire_in must be between 60 s and 365 days, got {shown(expire_in)}")
            return ttl_us
        raise InvalidTTLError(
            f"expire_in must be a datetime.timedelta or a number of milliseconds, not {type(expire_in).__name__}"
        )
    assert isinstance(expire_in, int | float)
    # Compared before any conversion: an int beyond float range must not overflow, and NaN compares false.
    if not MIN_TTL_MS <= expire_in <= MAX_TTL_MS:
        raise InvalidTTLError(
            f"expire_in must be between {MIN_TTL_MS} and {MAX_TTL_MS} milliseconds (60 s to 365 days), "
            f"got {shown(expire_in)} ms: a number is milliseconds; a datetime.timedelta says its unit"
        )
    return expire_in * 1000 if type(expire_in) is int else round(expire_in * 1000)


def seconds_of(duration: object) -> float | None:
    """``duration`` in seconds (inf past a float's range): a timedelta, or an int or float taken as seconds
    (a bool is not a number of seconds); None for anything else. The caller checks the range."""
    # By type and the base types' own methods: a subclass's (a caller's) code never runs.
    kind = type(duration)
    if issubclass(kind, timedelta):
        return timedelta.total_seconds(duration)  # type: ignore[arg-type]
    if kind is bool or not issubclass(kind, int | float):
        return None
    try:
        return int.__float__(duration) if issubclass(kind, int) else float.__float__(duration)  # type: ignore[arg-type]
    except OverflowError:  # an int past a float's range: longer (or more negative) than any bound
        return -math.inf if int.__lt__(duration, 0) else math.inf  # type: ignore[operator]


def check_interval(interval: object) -> float:
    """Return a watch's ``interval`` (a timedelta, or a number of seconds) in seconds: more than 0, at most 3600."""
    seconds = seconds_of(interval)
    if seconds is None or not 0 < seconds <= 3600:  # NaN compares false
        raise InvalidOptionsError(
            f"interval must be a datetime.timedelta or a number of seconds in (0, 3600], got {shown(interval)}"
        )
    return seconds


def ttl_from_expire_at(expire_at: object, now_us: int) -> int:
    """Validate ``expire_at`` (an aware datetime) against ``now_us`` and return the TTL in microseconds."""
    if not (issubclass(type(expire_at), datetime) and isinstance(expire_at, datetime)):
        raise InvalidTTLError(f"expire_at must be a datetime, not {type(expire_at).__name__}")
    if expire_at.utcoffset() is None:
        raise InvalidTTLError("expire_at must be timezone-aware (a naive datetime has no defined instant)")
    ttl_us = to_epoch_us(expire_at) - now_us
    if not MIN_TTL_US <= ttl_us <= MAX_TTL_US:
        raise InvalidTTLError(
            f"expire_at must be between now + 60 s and now + 365 days, got {expire_at.isoformat()} "
            f"({ttl_us / 1_000_000:.3f} s from now)"
        )
    return ttl_us


def check_set_options(
    *,
    if_versionstamp: object,
    if_not_exists: object,
    overwrite: object,
    expire_in: object,
    expire_at: object,
    refresh_on_access: object,
) -> None:
    """Reject mistyped or contradictory set options (the TTL bounds are checked separately)."""
    check_flag("if_not_exists", if_not_exists)
    check_flag("overwrite", overwrite)
    check_flag("refresh_on_access", refresh_on_access)
    if if_versionstamp is not None:
        check_versionstamp(if_versionstamp)
        if if_not_exists:
            raise InvalidOptionsError("if_versionstamp and if_not_exists contradict each other: use one")
        if not overwrite:
            raise InvalidOptionsError("overwrite=False and if_versionstamp contradict each other: use one")
    if expire_in is not None and expire_at is not None:
        raise InvalidOptionsError("expire_in and expire_at contradict each other: use one")
    if refresh_on_access and expire_in is None and expire_at is None:
        raise InvalidOptionsError("refresh_on_access needs a TTL: give expire_in or expire_at")


_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


def timedelta_us(duration: timedelta) -> int:
    """A timedelta in microseconds, exactly (no float rounding)."""
    return (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime, exactly (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
