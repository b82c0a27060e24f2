"""The usage ledger: one row in ai_usage per request, from its first moment to its end.

A row is inserted when a request is admitted (status 'started', with the prompt's
estimated tokens, and its answer's cap in reserved_tokens) and completed when it ends
(tokens, status, latency; reserved_tokens back to 0). Nothing is written while tokens
stream: the hot path costs one statement before and one after.

    started               running now
    ok                    the vendor answered
    error                 the vendor answered an error, or failed mid-answer
    timeout               the vendor went silent for AI_REQUEST_TIMEOUT
    client_disconnected   the student's client hung up (tokens: what was used so far)
    interrupted           the gateway stopped before the end (restart, crash)
    rejected_quota        refused: daily budget used (no tokens)
    rejected_concurrency  refused: too many requests at once (no tokens)

Nothing is lost when the gateway stops: each gateway process holds an advisory lock
on its random instance id for its whole life. A 'started' row whose instance holds no
lock belongs to a gateway that is gone; the sweeper (at start, then every minute) marks
it 'interrupted'. Rows of a live gateway, however long their stream, are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Optional

import asyncpg

from .schema import LOCK_NAMESPACE

log = logging.getLogger("aihub.gateway")

SWEEP_EVERY = 60.0  # seconds
FINISH_ATTEMPTS = 3  # a completed row is worth a few retries if the database blinks

# One statement decides and records: the user's budget (an override, else the default),
# the tokens of their rows today (UTC), running requests' reservations included, and, if
# under budget, the new 'started' row holding its own reservation ($6 prompt, $10 answer).
# $8: tokens the user's requests in flight have used beyond their reservations.
ADMIT = """
WITH budget AS (
    SELECT coalesce((SELECT daily_tokens FROM ai_budget_overrides WHERE username = $1),
                    $7::bigint) AS daily
), used AS (
    SELECT coalesce(sum(total_tokens + reserved_tokens), 0)::bigint AS tokens
    FROM ai_usage
    WHERE username = $1
      AND started_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
), admitted AS (
    INSERT INTO ai_usage (username, provider, model, endpoint, stream,
                          prompt_tokens, total_tokens, reserved_tokens, estimated, status, instance_id)
    SELECT $1, $2, $3, $4, $5, $6, $6, $10, true, 'started', $9
    FROM budget, used
    WHERE budget.daily = 0 OR used.tokens + $8 < budget.daily
    RETURNING id
)
SELECT budget.daily AS budget, used.tokens AS used, (SELECT id FROM admitted) AS id
FROM budget, used
"""

REJECT = """
INSERT INTO ai_usage (username, provider, model, endpoint, stream, status, http_status,
                      latency_ms, error, finished_at, instance_id)
VALUES ($1, $2, $3, $4, $5, $6, 429, 0, $7, now(), $8)
"""

FINISH = """
UPDATE ai_usage
SET prompt_tokens = $2, completion_tokens = $3, total_tokens = $4, estimated = $5,
    status = $6, http_status = $7, latency_ms = $8, ttft_ms = $9, error = $10,
    reserved_tokens = 0, finished_at = now()
WHERE id = $1
"""

SWEEP = """
UPDATE ai_usage
SET status = 'interrupted', finished_at = now(), reserved_tokens = 0,
    latency_ms = least(extract(epoch FROM now() - started_at) * 1000, 2147483647)::integer,
    error = 'the gateway stopped before this request ended'
WHERE status = 'started'
  AND instance_id NOT IN (
      SELECT objid::bigint FROM pg_locks
      WHERE locktype = 'advisory' AND granted AND objsubid = 2
        AND classid::bigint = $1
        AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))
"""


def not_text(value: str) -> Optional[str]:
    """Why PostgreSQL cannot store `value` as text (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "it holds a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "it holds a lone surrogate, which is not UTF-8 text"
    return None


def storable(text: Optional[str]) -> Optional[str]:
    """Free text (an error message) made storable: NULs and lone surrogates become U+FFFD."""
    if text is None or not not_text(text):
        return text
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


@dataclass(frozen=True)
class Admission:
    row_id: Optional[int]  # None: over budget
    budget: int
    used: int


@dataclass
class Outcome:
    status: str
    http_status: Optional[int]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    estimated: bool = False
    latency_ms: Optional[int] = None
    ttft_ms: Optional[int] = None
    error: Optional[str] = None


class Ledger:
    def __init__(self, pool: asyncpg.Pool, database: dict):
        self.pool = pool
        self._database = database
        self.instance_id = 0
        self._lock_conn: Optional[asyncpg.Connection] = None
        self._sweeper: Optional[asyncio.Task] = None

    # -- life --

    async def start(self) -> int:
        """Take this process's instance lock, then mark dead gateways' rows; returns how many."""
        await self._hold_instance_lock()
        swept = await self.sweep()
        self._sweeper = asyncio.ensure_future(self._sweep_forever())
        return swept

    async def close(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
        if self._lock_conn is not None and not self._lock_conn.is_closed():
            await self._lock_conn.close()

    async def _hold_instance_lock(self) -> None:
        """A dedicated connection holds pg_advisory_lock(namespace, instance id) for life."""
        if self._lock_conn is not None and not self._lock_conn.is_closed():
            return
        conn = await asyncpg.connect(**self._database)
        while True:
            candidate = self.instance_id or secrets.randbelow(2**31 - 2) + 1
            if await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_NAMESPACE, candidate):
                break
            self.instance_id = 0  # taken (by chance, or our old id after a reconnect race)
        self.instance_id = candidate
        self._lock_conn = conn

    async def sweep(self) -> int:
        result = await self.pool.execute(SWEEP, LOCK_NAMESPACE)
        count = int(result.split()[-1])
        if count:
            log.info("marked %d request(s) of stopped gateways as interrupted", count)
        return count

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            try:
                # Our lock must be held before sweeping, or our own rows look abandoned.
                await self._hold_instance_lock()
                await self.sweep()
            except Exception as error:  # the database is down: try again next time
                log.warning("ledger sweep failed: %s", type(error).__name__)

    # -- the hot path --

    async def admit(self, username: str, provider: str, model: str, endpoint: str, stream: bool,
                    prompt_estimate: int, answer_reserved: int, default_budget: int,
                    in_flight_tokens: int) -> Admission:
        row = await self.pool.fetchrow(
            ADMIT, username, provider, model, endpoint, stream, prompt_estimate,
            default_budget, in_flight_tokens, self.instance_id, answer_reserved,
        )
        return Admission(row["id"], row["budget"], row["used"])

    async def reject(self, username: str, provider: str, model: str, endpoint: str, stream: bool,
                     status: str, message: str) -> None:
        await self.pool.execute(REJECT, username, provider, model, endpoint, stream, status,
                                storable(message), self.instance_id)

    async def finish(self, row_id: int, outcome: Outcome) -> None:
        args = (row_id, outcome.prompt_tokens, outcome.completion_tokens, outcome.total_tokens,
                outcome.estimated, outcome.status, outcome.http_status, outcome.latency_ms,
                outcome.ttft_ms, storable(outcome.error))
        for attempt in range(FINISH_ATTEMPTS):
            try:
                await self.pool.execute(FINISH, *args)
                return
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as error:
                if attempt == FINISH_ATTEMPTS - 1:
                    # The row stays 'started' until a sweep after our exit: tokens lost,
                    # the request itself still on record.
                    log.error("could not complete ledger row %d: %s", row_id, type(error).__name__)
                    return
                await asyncio.sleep(0.5 * 2**attempt)
