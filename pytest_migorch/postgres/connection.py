"""Where the deploy runner connects, and the one place psycopg errors become ours.

The connection comes from ``--database-url``, else ``DATABASE_URL``, else the ``DB_*`` variables
(SPEC section 5), so the same settings drive golang-migrate and migorch. URLs written for
golang-migrate work unchanged: its own ``x-*`` parameters and ``search_path`` are removed before
the URL reaches libpq, exactly as golang-migrate removes them before lib/pq sees them.

Passwords never leave this module in clear text: settings carry a masked display form for
messages, every psycopg error text is scrubbed of the password before it becomes a
:class:`~pytest_migorch.errors.DatabaseError`, and :class:`SecretFilter` masks it in log records
(the CLI installs it, so not even ``LOG_LEVEL=debug`` shows it).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pytest_migorch.errors import ConfigurationError, DatabaseError, UsageError

__all__ = [
    "ConnectionSettings",
    "resolve_settings",
    "connect",
    "database_error",
    "SecretFilter",
    "mask_secret",
    "mask_dsn",
    "DB_VARIABLES",
]

log = logging.getLogger(__name__)

#: The variables of the seed's Makefile, in the order they are documented.
DB_VARIABLES = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_SSL_MODE")
#: Seconds libpq waits for a server that does not answer, unless the settings say otherwise.
DEFAULT_CONNECT_TIMEOUT = 10
APPLICATION_NAME = "migorch"

_URL_SCHEMES = ("postgres", "postgresql")
#: URL query parameters golang-migrate consumes itself (or hands to lib/pq as session settings)
#: that libpq would reject as unknown.
_DROPPED_QUERY_KEYS = ("search_path",)
_KV_PASSWORD = re.compile(r"\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
#: ``scheme://user:`` then everything up to the LAST ``@``: the password of a URL, even one whose
#: reserved characters (``/ ? # @``) were not percent-encoded, so URL parsing would split it.
_URL_PASSWORD = re.compile(r"([a-z][a-z0-9+.-]*://[^:@/?#\s]*:)(.*)@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)

# Every password seen by this process, so log records and error texts can be scrubbed of it.
_SECRETS: set[str] = set()


@dataclass(frozen=True)
class ConnectionSettings:
    """Resolved connection settings.

    ``conninfo`` holds the password and must only ever be given to libpq. ``display`` is the
    masked form for messages. ``lock_database_name`` is the database name golang-migrate would
    hash into its advisory lock key for the same settings: the URL path including its leading
    ``/`` (``"/mydb"``), or None when the URL has no path, in which case golang-migrate (and
    migorch) use ``current_database()``.
    """

    conninfo: str
    display: str
    source: str
    lock_database_name: str | None
    password: str | None = None

    def __repr__(self) -> str:  # never show the conninfo, even in a traceback or debugger
        return f"ConnectionSettings(display={self.display!r}, source={self.source!r})"


def resolve_settings(
    database_url: str | None, environ: Mapping[str, str]
) -> ConnectionSettings:
    """Settings from ``--database-url``, else ``DATABASE_URL``, else the ``DB_*`` variables."""
    if database_url:
        return _from_text(database_url, "--database-url")
    if environ.get("DATABASE_URL"):
        return _from_text(environ["DATABASE_URL"], "DATABASE_URL")
    present = {name: environ[name] for name in DB_VARIABLES if environ.get(name)}
    if not present:
        raise UsageError(
            "no database connection: pass --database-url, set DATABASE_URL, or set "
            + ", ".join(DB_VARIABLES)
        )
    return _from_variables(present)


def _from_variables(values: Mapping[str, str]) -> ConnectionSettings:
    port = values.get("DB_PORT")
    if port is not None and not port.isdigit():
        raise ConfigurationError(f"DB_PORT must be a port number, not {port!r}")
    params: dict[str, Any] = {
        "host": values.get("DB_HOST"),
        "port": port,
        "user": values.get("DB_USER"),
        "password": values.get("DB_PASSWORD"),
        "dbname": values.get("DB_NAME"),
        "sslmode": values.get("DB_SSL_MODE"),
    }
    params = {key: value for key, value in params.items() if value}
    password = params.get("password")
    _remember(password)
    shown = {key: ("***" if key == "password" else value) for key, value in params.items()}
    dbname = params.get("dbname")
    return ConnectionSettings(
        conninfo=_with_defaults(make_conninfo("", **params)),
        display=" ".join(f"{key}={value}" for key, value in shown.items()),
        source="DB_* variables",
        # The seed builds postgres://...@host:port/$(DB_NAME) for golang-migrate: path "/name".
        lock_database_name=f"/{dbname}" if dbname else None,
        password=password,
    )


def _from_text(text: str, source: str) -> ConnectionSettings:
    text = text.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in _URL_SCHEMES:
        return _from_url(text, source)
    if scheme:
        raise ConfigurationError(
            f"{source} has scheme {scheme!r}; use postgres://user:password@host:port/dbname"
        )
    match = _KV_PASSWORD.search(text)
    password = match.group(1).strip("'") if match else None
    _remember(password)
    try:
        params = conninfo_to_dict(text)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"{source} is not a valid connection string ({mask_secret(str(exc), password)}); "
            "expected postgres://user:password@host:port/dbname or key=value pairs"
        ) from None
    if params.get("password"):
        password = str(params["password"])
        _remember(password)
    dbname = params.get("dbname")
    return ConnectionSettings(
        conninfo=_with_defaults(text),
        display=mask_secret(_KV_PASSWORD.sub("password=***", text), password),
        source=source,
        lock_database_name=f"/{dbname}" if dbname else None,
        password=password,
    )


def _from_url(text: str, source: str) -> ConnectionSettings:
    parts = urlsplit(text)
    if "@" in text.split("://", 1)[1] and "@" not in parts.netloc:
        # An '@' after the host part: the password holds an unencoded / ? or #, so the URL
        # splits inside it. Name the problem, never the text of the password.
        raise ConfigurationError(
            f"{source} is not a valid URL ({mask_dsn(text)}): its password contains reserved "
            "characters (/ ? # @ :) that are not percent-encoded; encode them (e.g. / as %2F, "
            "# as %23) or use the DB_* variables")
    try:
        password = unquote(parts.password) if parts.password else None
        _ = parts.port  # raises ValueError on a non-numeric port
    except ValueError:
        # The "port" may be the start of a password with an unencoded character: never echo it.
        raise ConfigurationError(
            f"{source} is not a valid URL ({mask_dsn(text)}): its port is not a number; "
            "expected postgres://user:password@host:port/dbname, with reserved characters "
            "percent-encoded"
        ) from None
    _remember(password)
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.startswith("x-") or key in _DROPPED_QUERY_KEYS:
            log.debug("ignoring golang-migrate URL parameter %s", key)
            continue
        query.append((key, value))
    cleaned = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
    try:
        conninfo_to_dict(cleaned)
    except psycopg.Error as exc:
        raise ConfigurationError(
            f"{source} is not a valid connection URL: {mask_secret(str(exc), password)}"
        ) from None
    display_netloc = parts.netloc
    if parts.password is not None:
        user = quote(unquote(parts.username or ""), safe="")
        host = parts.netloc.rsplit("@", 1)[1]
        display_netloc = f"{user}:***@{host}"
    display = urlunsplit((parts.scheme, display_netloc, parts.path, urlencode(query), ""))
    path = unquote(parts.path)
    return ConnectionSettings(
        conninfo=_with_defaults(cleaned),
        display=display,
        source=source,
        lock_database_name=path or None,
        password=password,
    )


def _with_defaults(conninfo: str) -> str:
    """Add a connect timeout (so a wrong host fails instead of hanging) and our name."""
    params = conninfo_to_dict(conninfo)
    extra: dict[str, Any] = {}
    if "connect_timeout" not in params:
        extra["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    if "application_name" not in params:
        extra["application_name"] = APPLICATION_NAME
    return make_conninfo(conninfo, **extra) if extra else conninfo


def _remember(password: str | None) -> None:
    if password:
        _SECRETS.add(password)


def mask_dsn(text: str) -> str:
    """``text`` with every password written in it replaced by ``***``: a URL's (whatever stands
    between ``//user:`` and the last ``@``), ``?password=`` and ``password=`` of key/value strings.

    It rather masks too much than too little, and works on text that does not even parse: that
    is exactly when the password would otherwise be printed in an error message.
    """
    masked = _URL_PASSWORD.sub(r"\1***@", text)
    masked = _QUERY_PASSWORD.sub(r"\1***", masked)
    return re.sub(r"((?<![?&])\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", masked,
                  flags=re.IGNORECASE)


def mask_secret(text: str, password: str | None = None) -> str:
    """``text`` without ``password``, any password this process has seen, or any password
    written in it (:func:`mask_dsn`). The one masking function every message goes through."""
    for secret in sorted(_SECRETS | ({password} if password else set()), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return mask_dsn(text)


class SecretFilter(logging.Filter):
    """Masks every known password in log records, whoever logs them (psycopg included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _SECRETS:
            message = record.getMessage()
            masked = mask_secret(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True


def connect(settings: ConnectionSettings, *, purpose: str = "migorch") -> psycopg.Connection[Any]:
    """An autocommit connection; a failure becomes a :class:`DatabaseError` without secrets.

    Autocommit is the runner's base state: every write it makes is in an explicit
    ``transaction()`` block, so what is committed and when is visible in the code.
    """
    log.debug("connecting to %s (%s) for %s", settings.display, settings.source, purpose)
    try:
        return psycopg.connect(settings.conninfo, autocommit=True)
    except psycopg.Error as exc:
        text = mask_secret(_short(str(exc)), settings.password)
        raise DatabaseError(
            f"cannot connect to {settings.display} (from {settings.source}): {text}"
        ) from None


def database_error(exc: psycopg.Error, doing: str) -> DatabaseError:
    """Translate a psycopg error met while ``doing`` something into our error, masked."""
    diag = exc.diag
    text = diag.message_primary or _short(str(exc)) or type(exc).__name__
    if diag.sqlstate:
        text = f"{text} (SQLSTATE {diag.sqlstate})"
    if diag.message_detail:
        text += f"\n  DETAIL: {diag.message_detail}"
    if diag.message_hint:
        text += f"\n  HINT: {diag.message_hint}"
    return DatabaseError(mask_secret(f"{doing}: {text}"))


def _short(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "; ".join(lines[:3])
