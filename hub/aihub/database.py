"""Where the hub keeps its state: the PostgreSQL database admins query."""

from types import SimpleNamespace
from typing import Callable, TypeVar
from urllib.parse import quote

import psycopg2

from .gateway.schema import USER_TABLES

Result = TypeVar("Result")


def database_url(settings: SimpleNamespace, password: str) -> str:
    # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the image ships psycopg2.
    return (
        f"postgresql+psycopg2://{settings.postgres_user}:{quote(password, safe='')}"
        f"@{settings.postgres_host}:{settings.postgres_port}/{settings.postgres_db}"
    )


def postgres_connection(settings: SimpleNamespace, password: str) -> dict:
    """The same database as keyword arguments for asyncpg (the AI gateway's ledger).

    Separate values rather than a URL: nothing to quote, and no string holding the
    password that an error message could repeat.
    """
    return {
        "host": settings.postgres_host,
        "port": settings.postgres_port,
        "user": settings.postgres_user,
        "database": settings.postgres_db,
        "password": password,
    }


def in_transaction(settings: SimpleNamespace, password: str, work: Callable[..., Result]) -> Result:
    """`work(cursor)`'s result, run in one transaction on the hub's database (the admin
    tools, from the hub's image)."""
    connection = psycopg2.connect(**postgres_connection(settings, password))
    try:
        with connection, connection.cursor() as cursor:
            return work(cursor)
    finally:
        connection.close()


def remove_ledger_rows(cursor, names: list[str]) -> int:
    """Delete `names`' rows from the AI gateway's tables (there are none before the
    gateway's first start); return how many rows went."""
    removed = 0
    for table in USER_TABLES:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        if cursor.fetchone()[0]:
            cursor.execute(f"DELETE FROM {table} WHERE username = ANY(%s)", (names,))
            removed += cursor.rowcount
    return removed
