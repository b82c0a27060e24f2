"""The connection pool to the hub's PostgreSQL, and the schema brought up to date.

At start the gateway waits for the database (compose starts it first, but a restarting
PostgreSQL should delay the gateway, not crash-loop it), then applies the migrations of
schema.py under an advisory lock, so concurrent starts are safe.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from .schema import LOCK_NAMESPACE, MIGRATION_LOCK, MIGRATIONS, VERSION_TABLE

log = logging.getLogger("aihub.gateway")

POOL_SIZE = 10  # enough for a class: each request holds a connection for one statement
STATEMENT_TIMEOUT = 30  # seconds; a hung statement must not hold a request forever
SESSION_SETTINGS = {
    "application_name": "ai-gateway",  # who is who in pg_stat_activity
    # A commit returns before its WAL reaches the disk: the ledger statement on every
    # request's path costs no fsync. Only a crash of PostgreSQL itself (not of the
    # gateway) can lose the last fraction of a second of rows; never corrupts anything.
    "synchronous_commit": "off",
}


class DatabaseUnavailable(Exception):
    """The database could not be reached in time; str() is one line, no password."""


def describe(database: dict) -> str:
    return f"{database['user']}@{database['host']}:{database['port']}/{database['database']}"


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".splitlines()[0][:200]


async def connect(database: dict, *, wait: float = 60.0, pool_size: int = POOL_SIZE) -> asyncpg.Pool:
    """A pool to `database`, retrying for up to `wait` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            return await asyncpg.create_pool(
                **database, min_size=1, max_size=pool_size, command_timeout=STATEMENT_TIMEOUT,
                server_settings=SESSION_SETTINGS,
            )
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            if loop.time() >= deadline:
                raise DatabaseUnavailable(
                    f"cannot connect to PostgreSQL as {describe(database)}: {_reason(error)}"
                ) from None
            log.warning("waiting for PostgreSQL at %s (%s)", describe(database), _reason(error))
            await asyncio.sleep(1.0)


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply the migrations this database lacks; return their versions."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            # Held to the end of the transaction: a second gateway waits here, then
            # finds the schema complete and applies nothing.
            await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_NAMESPACE, MIGRATION_LOCK)
            await conn.execute(VERSION_TABLE)
            current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM ai_schema_version")
            applied = []
            for version, description, sql in MIGRATIONS:
                if version <= current:
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO ai_schema_version (version, description) VALUES ($1, $2)",
                    version, description,
                )
                applied.append(version)
    newest = MIGRATIONS[-1][0]
    if current > newest:
        log.warning("the database's gateway schema (v%d) is newer than this gateway's (v%d)", current, newest)
    for version in applied:
        log.info("database: applied migration %d", version)
    return applied
