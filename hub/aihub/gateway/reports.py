"""What the admin page shows and exports, and the budget overrides it edits.

The page's queries read ai_usage directly with a started_at bound (the index serves
them), computing the same sums as the ai_usage_by_*_day views admins query with psql.
Days are UTC days, as budgets are.
"""

from __future__ import annotations

from typing import AsyncIterator, Optional

import asyncpg

MAX_DAYS = 366
# The first UTC day shown: today counts as one of the `$1` days.
SINCE = "(date_trunc('day', now() AT TIME ZONE 'UTC') - ($1::int - 1) * interval '1 day') AT TIME ZONE 'UTC'"
TODAY = "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
DAY = "(started_at AT TIME ZONE 'UTC')::date"
COUNTS = """
       count(*) FILTER (WHERE status NOT LIKE 'rejected%') AS requests,
       count(*) FILTER (WHERE status LIKE 'rejected%') AS rejected,
       count(*) FILTER (WHERE status NOT IN ('ok', 'started') AND status NOT LIKE 'rejected%') AS failed,
       sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens,
       sum(total_tokens)::bigint AS total_tokens"""

PER_USER = f"""
SELECT username, {COUNTS},
       (coalesce(sum(total_tokens) FILTER (WHERE started_at >= {TODAY}), 0))::bigint AS today
FROM ai_usage WHERE started_at >= {SINCE}
GROUP BY username ORDER BY total_tokens DESC, username
"""
PER_USER_DAY = f"""
SELECT {DAY} AS day, username, {COUNTS}
FROM ai_usage WHERE started_at >= {SINCE}
GROUP BY 1, 2 ORDER BY 1 DESC, total_tokens DESC, username
"""
PER_MODEL_DAY = f"""
SELECT {DAY} AS day, provider, model, count(DISTINCT username) AS users, {COUNTS}
FROM ai_usage WHERE started_at >= {SINCE}
GROUP BY 1, 2, 3 ORDER BY 1 DESC, total_tokens DESC, provider, model
"""
DAY_TOTALS = f"""
SELECT {DAY} AS day, username, provider, model, {COUNTS}
FROM ai_usage WHERE started_at >= {SINCE}
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
"""
RAW_COLUMNS = ("id", "username", "provider", "model", "endpoint", "stream", "status", "http_status",
               "prompt_tokens", "completion_tokens", "total_tokens", "estimated", "latency_ms",
               "ttft_ms", "started_at", "finished_at")
RAW_ROWS = f"SELECT {', '.join(RAW_COLUMNS)} FROM ai_usage WHERE started_at >= {SINCE} ORDER BY id"
DAY_TOTAL_COLUMNS = ("day", "username", "provider", "model", "requests", "rejected", "failed",
                     "prompt_tokens", "completion_tokens", "total_tokens")


def clamp_days(days: Optional[int]) -> int:
    return max(1, min(MAX_DAYS, days or 30))


async def page(pool: asyncpg.Pool, days: int) -> dict:
    async with pool.acquire() as conn:
        return {
            "today": await conn.fetchval("SELECT (now() AT TIME ZONE 'UTC')::date"),
            "users": await conn.fetch(PER_USER, days),
            "user_days": await conn.fetch(PER_USER_DAY, days),
            "model_days": await conn.fetch(PER_MODEL_DAY, days),
            "overrides": await conn.fetch("SELECT username, daily_tokens, updated_at FROM ai_budget_overrides"
                                          " ORDER BY username"),
        }


async def csv_rows(pool: asyncpg.Pool, days: int, by_day: bool) -> AsyncIterator[tuple[str, ...] | asyncpg.Record]:
    """The header, then the rows, fetched in batches through a cursor (no big list in memory)."""
    columns, query = (DAY_TOTAL_COLUMNS, DAY_TOTALS) if by_day else (RAW_COLUMNS, RAW_ROWS)
    yield columns
    async with pool.acquire() as conn:
        async with conn.transaction(readonly=True):
            async for record in conn.cursor(query, days, prefetch=1000):
                yield record


async def set_override(pool: asyncpg.Pool, username: str, daily_tokens: Optional[int]) -> None:
    """daily_tokens None: back to AI_DAILY_TOKEN_BUDGET. Applies from the next request."""
    if daily_tokens is None:
        await pool.execute("DELETE FROM ai_budget_overrides WHERE username = $1", username)
    else:
        await pool.execute(
            "INSERT INTO ai_budget_overrides (username, daily_tokens) VALUES ($1, $2)"
            " ON CONFLICT (username) DO UPDATE SET daily_tokens = excluded.daily_tokens, updated_at = now()",
            username, daily_tokens,
        )
