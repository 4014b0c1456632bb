"""Reaching PostgreSQL by DSN without its password reaching a log line or an exception message:
describe_dsn() names the server, redact() masks every form of the password, connect() uses both."""

from __future__ import annotations

import re

import psycopg2
import psycopg2.extensions


class WarehouseConnectionError(RuntimeError):
    """The warehouse cannot be reached; the message names the server but never the password."""


def _dsn_secrets(dsn: str) -> list[str]:
    secrets = []
    try:
        password = psycopg2.extensions.parse_dsn(dsn).get("password")
        if password:
            secrets.append(password)
    except psycopg2.Error:
        pass
    # also catch what parse_dsn could not parse (a malformed DSN is echoed in its error)
    secrets += re.findall(r"password\s*=\s*'((?:[^'\\]|\\.)*)'", dsn)
    secrets += re.findall(r"password\s*=\s*([^\s']+)", dsn)
    secrets += re.findall(r"://[^:/@\s]*:([^@\s]+)@", dsn)
    secrets += re.findall(r"[?&]password=([^&\s]+)", dsn)
    return sorted({s for s in secrets if s}, key=len, reverse=True)


def redact(text: str, dsn: str) -> str:
    """`text` with every form of the DSN's password replaced by ***."""
    for secret in _dsn_secrets(dsn):
        text = text.replace(secret, "***")
    return text


def describe_dsn(dsn: str) -> str:
    """host/port/dbname/user of a DSN, for log lines. Never includes the password."""
    try:
        parts = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        return "<unparseable DSN>"
    shown = [f"{key}={parts[key]}" for key in ("host", "port", "dbname", "user") if parts.get(key)]
    return " ".join(shown) or "<default libpq connection>"


def connect(dsn: str, application_name: str):
    """A UTF-8 psycopg2 connection; a failure raises WarehouseConnectionError, password redacted."""
    try:
        conn = psycopg2.connect(dsn, application_name=application_name)
    except psycopg2.Error as exc:
        message = redact(str(exc).strip(), dsn)
        # `from None`: the original exception text is not chained into tracebacks or logs
        raise WarehouseConnectionError(
            f"cannot connect to PostgreSQL ({describe_dsn(dsn)}): {message}") from None
    conn.set_client_encoding("UTF8")
    return conn
