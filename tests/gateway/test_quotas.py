"""Daily budgets and the concurrency cap, alone and under races."""

import asyncio
from datetime import timedelta

import httpx
import pytest

from aihub.gateway.quotas import next_reset, over_budget

CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "alpha beta gamma delta epsilon"}]}
TOKENS = 5 + 6  # five words in, "echo-1:" and five words out


def ask(gateway, who, **extra):
    return httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=who.headers,
                      json={**CHAT, **extra}, timeout=60)


def set_budget(database, username, tokens):
    if tokens is None:
        database.query("DELETE FROM ai_budget_overrides WHERE username = %s", username)
    else:
        database.query("INSERT INTO ai_budget_overrides (username, daily_tokens) VALUES (%s, %s)"
                       " ON CONFLICT (username) DO UPDATE SET daily_tokens = excluded.daily_tokens",
                       username, tokens)


def many(gateway, requests):
    """Send (student, extra body) pairs all at once; return the responses in order."""
    async def run():
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60,
                                     limits=httpx.Limits(max_connections=200)) as client:
            return await asyncio.gather(*(
                client.post("/deepseek/v1/chat/completions", headers=who.headers, json={**CHAT, **extra})
                for who, extra in requests))
    return asyncio.run(run())


def test_over_budget_is_429_with_the_one_line_message(gateway, student, database, upstream):
    alice = student()
    set_budget(database, alice.name, 2 * TOKENS - 1)
    assert ask(gateway, alice).status_code == 200  # 11 used, under 21
    assert ask(gateway, alice).status_code == 200  # started at 11 < 21; 22 used
    calls = len(upstream.state.requests)
    refused = ask(gateway, alice)
    assert refused.status_code == 429
    assert refused.json()["error"] == {"message": f"daily AI budget of {2 * TOKENS - 1} tokens used; "
                                                  "resets at 00:00 UTC",
                                       "type": "insufficient_quota", "code": "daily_budget_exceeded"}
    assert refused.headers["x-should-retry"] == "false"  # the OpenAI SDK will not retry
    assert len(upstream.state.requests) == calls  # the vendor never saw it
    rows = database.settled_rows(alice.name)
    assert [(r["status"], r["http_status"], r["total_tokens"]) for r in rows] == [
        ("ok", 200, TOKENS), ("ok", 200, TOKENS), ("rejected_quota", 429, 0)]


def test_the_default_budget_comes_from_the_settings(start_gateway, student):
    gateway = start_gateway(AI_DAILY_TOKEN_BUDGET="5")
    alice = student()
    assert ask(gateway, alice).status_code == 200
    assert "daily AI budget of 5 tokens used" in ask(gateway, alice).json()["error"]["message"]


def test_an_override_applies_without_a_restart(start_gateway, student, database):
    gateway = start_gateway(AI_DAILY_TOKEN_BUDGET="5")
    alice = student()
    assert ask(gateway, alice).status_code == 200
    assert ask(gateway, alice).status_code == 429
    set_budget(database, alice.name, 1000)  # the admin raises it, e.g. with psql
    assert ask(gateway, alice).status_code == 200
    set_budget(database, alice.name, 0)  # 0: no limit, as in .env
    assert ask(gateway, alice).status_code == 200
    set_budget(database, alice.name, 1)
    assert ask(gateway, alice).status_code == 429
    set_budget(database, alice.name, None)  # back to the default, 5
    assert ask(gateway, alice).status_code == 429


def test_the_reset_is_the_next_utc_midnight():
    reset = next_reset()
    assert (reset.hour, reset.minute, reset.utcoffset()) == (0, 0, timedelta(0))
    assert "resets at 00:00 UTC" in over_budget(7).message


def test_a_burst_at_the_edge_of_the_budget_lets_one_request_through(gateway, student, database):
    """Budget nearly used, 30 requests at once: the first one's row holds its prompt's
    estimate, so every later check sees the budget used. No burst slips through."""
    alice = student()
    budget = 1000
    set_budget(database, alice.name, budget)
    database.query("INSERT INTO ai_usage (username, provider, model, endpoint, total_tokens, status, instance_id)"
                   " VALUES (%s, 'deepseek', 'echo-1', 'chat/completions', %s, 'ok', 0)", alice.name, budget - 1)
    responses = many(gateway, [(alice, {"x_test": {"delay": 0.2}})] * 30)
    assert sorted(r.status_code for r in responses) == [200] + [429] * 29
    statuses = [r["status"] for r in database.settled_rows(alice.name)[1:]]
    assert sorted(statuses) == ["ok"] + ["rejected_quota"] * 29


@pytest.mark.parametrize("stream", [False, True])
def test_racing_requests_overspend_only_by_what_was_in_flight(gateway, student, database, stream):
    alice, bob = student("alice"), student("bob")
    budget = 100
    set_budget(database, alice.name, budget)
    responses = many(gateway, [(alice, {"stream": stream, "x_test": {"delay": 0.05}})] * 40
                     + [(bob, {"stream": stream})] * 10)
    assert all(r.status_code == 200 for r in responses[40:])  # bob has no budget to hit
    codes = [r.status_code for r in responses[:40]]
    assert set(codes) == {200, 429} and codes.count(429) >= 20
    rows = database.settled_rows(alice.name)
    assert len(rows) == 40
    admitted = [r for r in rows if r["status"] == "ok"]
    assert len(admitted) == codes.count(200)

    def finished_before(moment):
        return sum(r["total_tokens"] for r in admitted if r["finished_at"] < moment)

    # Each request was admitted while the finished ones were under the budget...
    for row in admitted:
        assert finished_before(row["started_at"]) < budget
    # ...so all that was spent beyond it was spent by requests in flight at the last admission.
    last = max(admitted, key=lambda r: r["started_at"])
    in_flight = sum(r["total_tokens"] for r in admitted if r["finished_at"] >= last["started_at"])
    spent = sum(r["total_tokens"] for r in admitted)
    assert spent - budget < in_flight
    assert all(r["total_tokens"] == 0 for r in rows if r["status"] == "rejected_quota")


def test_the_concurrency_cap(start_gateway, student, database, upstream):
    gateway = start_gateway(AI_MAX_CONCURRENT_REQUESTS="2")
    alice, bob = student("alice"), student("bob")
    held = upstream.state.in_flight  # stalled answers of earlier tests still hold their threads
    upstream.state.max_in_flight = held
    responses = many(gateway, [(alice, {"x_test": {"delay": 0.5}})] * 6 + [(bob, {"x_test": {"delay": 0.5}})] * 2)
    alices = [r.status_code for r in responses[:6]]
    assert sorted(alices) == [200, 200, 429, 429, 429, 429]
    assert [r.status_code for r in responses[6:]] == [200, 200]  # bob has his own two
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["message"] == "too many AI requests at once (limit 2); wait for one to finish"
    assert refused.headers["retry-after"] == "1"
    assert upstream.state.max_in_flight - held <= 4  # two each for alice and bob
    assert sorted(r["status"] for r in database.settled_rows(alice.name)) == ["ok"] * 2 + ["rejected_concurrency"] * 4
    # once they finish, alice may ask again
    assert ask(gateway, alice).status_code == 200


# -- reservations: a running request counts with its answer's cap --

CAP = 100  # AI_DEFAULT_MAX_TOKENS of these tests' gateway


@pytest.fixture(scope="module")
def capped(make_config):
    from .conftest import GatewayThread
    running = GatewayThread(make_config(AI_DEFAULT_MAX_TOKENS=str(CAP)))
    yield running
    running.stop()


def test_50_concurrent_long_answers_overspend_by_one_completion_cap_at_most(capped, student, database, figures):
    """One student, 50 long answers at once, budget enough for about 5: each running
    request holds its prompt and its answer's cap, so the rest are refused."""
    alice = student()
    answer = 5 + CAP  # five words in; the answer (200 words) cut at the cap
    budget = 5 * answer
    set_budget(database, alice.name, budget)
    long_answer = {"x_test": {"repeat": 40, "delay": 0.002}}
    responses = many(capped, [(alice, {**long_answer, "stream": n % 2 == 0}) for n in range(50)])
    codes = [r.status_code for r in responses]
    assert set(codes) == {200, 429} and codes.count(200) <= 6
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.json()["error"]["code"] == "daily_budget_exceeded"
        assert set(refused.json()["error"]) == {"message", "type", "code"}
    rows = database.settled_rows(alice.name)
    answered = [r for r in rows if r["status"] == "ok"]
    assert len(answered) == codes.count(200)
    assert all(r["completion_tokens"] == CAP for r in answered)  # the vendor was sent the cap
    spent = sum(r["total_tokens"] for r in rows)
    figures["50 long answers at once, budget for 5"] = (f"{len(answered)} answered, {codes.count(429)} refused, "
                                                        f"{spent} tokens of a {budget} budget")
    assert spent <= budget + CAP
    assert all(r["reserved_tokens"] == 0 for r in rows)  # every reservation released


def test_the_cap_goes_to_the_vendor_only_when_the_request_names_none(capped, student, upstream, database):
    alice = student()
    assert ask(capped, alice, x_test={"repeat": 40}).json()["choices"][0]["finish_reason"] == "length"
    sent = [r.body for r in upstream.state.requests if r.body and r.body.get("x_test") == {"repeat": 40}]
    assert sent[-1]["max_tokens"] == CAP
    own = ask(capped, alice, max_tokens=7, x_test={"repeat": 2})
    assert len(own.json()["choices"][0]["message"]["content"].split()) == 7
    sent = [r.body for r in upstream.state.requests if r.body and r.body.get("x_test") == {"repeat": 2}]
    assert sent[-1]["max_tokens"] == 7 and "max_completion_tokens" not in sent[-1]
    refused = ask(capped, alice, max_tokens="lots")
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_max_tokens")


def test_a_running_request_holds_its_reservation_until_it_ends_however_it_ends(capped, student, database):
    alice = student()
    held = {**CHAT, "stream": True, "max_tokens": 50, "n": 2, "x_test": {"stall_after": 1}}
    with httpx.stream("POST", f"{capped.url}/deepseek/v1/chat/completions", headers=alice.headers, timeout=30,
                      json=held) as response:
        chunks = response.iter_raw()
        next(chunks)
        [row] = database.rows(alice.name)
        assert (row["status"], row["reserved_tokens"]) == ("started", 2 * 50)  # n answers of up to 50
    # the client hung up; then a vendor error; both release what they held
    assert ask(capped, alice, x_test={"error": "500"}).status_code == 500
    rows = database.settled_rows(alice.name)
    assert [(r["status"], r["reserved_tokens"]) for r in rows] == [("client_disconnected", 0), ("error", 0)]
