"""Daily token budgets and the cap on concurrent requests, decided before a call goes out.

Budget: a user may start a request while their tokens today (UTC) are under their
budget: an admin's override in ai_budget_overrides (read on every request, so a change
applies at once), else AI_DAILY_TOKEN_BUDGET; 0 means no limit. "Tokens today" is the
ledger's sum, in which a running request counts with its reservation (its prompt's
estimate plus its answer's cap: max_tokens, or AI_DEFAULT_MAX_TOKENS, which the vendor
is sent), plus anything this gateway's running requests used beyond their reservations
(known in memory only). When a request ends, its real usage replaces its reservation.

Each user's admissions run one at a time (an asyncio lock per user): the check and the
new 'started' row are one statement, and the next request of the same user is checked
only after it. So however many requests a user sends at once, they overspend their
budget by at most the reservation of the last one admitted.

The API, for every route that calls a vendor:

    row = await quotas.admit(username, request, meter)   # GatewayError: 429, or 400
    ...forward it, metering into `meter`...
    await quotas.settle(username, row, meter, outcome)   # on every path, in a finally

`request` has .upstream.id, .model, .endpoint, .stream; `meter` is a
metering.Meter(prompt_estimate, completion_cap).

Concurrency: at most AI_MAX_CONCURRENT_REQUESTS requests per user in flight in this
gateway; 0 means no limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Optional

from .errors import GatewayError
from .ledger import Ledger, Outcome, not_text
from .metering import Meter
from .payloads import ProxyRequest

log = logging.getLogger("aihub.gateway")


def next_reset(now: Optional[datetime] = None) -> datetime:
    """Budgets count UTC days: the next reset is the coming UTC midnight."""
    now = now or datetime.now(timezone.utc)
    return (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def over_budget(budget: int, now: Optional[datetime] = None) -> GatewayError:
    now = now or datetime.now(timezone.utc)
    reset = next_reset(now)
    return GatewayError(
        429,
        f"daily AI budget of {budget} tokens used; resets at {reset:%H:%M} UTC",
        "daily_budget_exceeded",
        type="insufficient_quota",
        # Retrying before midnight cannot help: the OpenAI SDK honours x-should-retry.
        headers={"x-should-retry": "false",
                 "Retry-After": str(max(1, int((reset - now).total_seconds())))},
    )


def too_many(limit: int) -> GatewayError:
    return GatewayError(
        429,
        f"too many AI requests at once (limit {limit}); wait for one to finish",
        "too_many_concurrent_requests",
        headers={"Retry-After": "1"},
    )


class Quotas:
    def __init__(self, ledger: Ledger, daily_budget: int, max_concurrent: int):
        self.ledger = ledger
        self.daily_budget = daily_budget
        self.max_concurrent = max_concurrent
        self.in_flight: dict[str, set[Meter]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._lock_users: dict[str, int] = {}  # waiters per lock, to forget idle users

    async def admit(self, username: str, request: ProxyRequest, meter: Meter) -> int:
        """The ledger row of an admitted request, holding its reservation; or GatewayError:
        429 (recorded), or 400 for a user name or model id the ledger cannot store."""
        for what, text in (("user name", username), ("model", request.model)):
            problem = not_text(text)
            if problem:
                raise GatewayError(400, f"the {what} {json.dumps(text)} cannot be recorded: {problem}",
                                   "invalid_user" if what == "user name" else "invalid_model")
        lock = self._locks.setdefault(username, asyncio.Lock())
        self._lock_users[username] = self._lock_users.get(username, 0) + 1
        try:
            async with lock:
                flights = self.in_flight.get(username, set())
                if self.max_concurrent and len(flights) >= self.max_concurrent:
                    status, rejection = "rejected_concurrency", too_many(self.max_concurrent)
                else:
                    admission = await self.ledger.admit(
                        username, request.upstream.id, request.model, request.endpoint,
                        request.stream, meter.prompt_estimate, meter.completion_cap, self.daily_budget,
                        sum(m.tokens_beyond_reservation for m in flights),
                    )
                    if admission.row_id is not None:
                        self.in_flight.setdefault(username, set()).add(meter)
                        return admission.row_id
                    status, rejection = "rejected_quota", over_budget(admission.budget)
        finally:
            self._lock_users[username] -= 1
            if not self._lock_users[username]:
                del self._lock_users[username]
                del self._locks[username]
        try:
            await self.ledger.reject(username, request.upstream.id, request.model, request.endpoint,
                                     request.stream, status, rejection.message)
        except Exception as error:  # the refusal stands even if it cannot be recorded
            log.warning("could not record a refusal: %s", type(error).__name__)
        raise rejection

    async def settle(self, username: str, row_id: int, meter: Meter, outcome: Outcome) -> None:
        """The end of an admitted request, whatever ended it: its row gets the real usage
        (the reservation is released) and its concurrency slot is freed. Never raises."""
        try:
            await self.ledger.finish(row_id, outcome)
        except Exception as error:  # the row stays 'started', reservation held, until a sweep after we stop
            log.error("could not complete ledger row %d: %s", row_id, type(error).__name__)
        finally:
            self._release(username, meter)  # never leak a concurrency slot

    def _release(self, username: str, meter: Meter) -> None:
        flights = self.in_flight.get(username)
        if flights is not None:
            flights.discard(meter)
            if not flights:
                del self.in_flight[username]

    @property
    def requests_in_flight(self) -> int:
        return sum(len(f) for f in self.in_flight.values())
