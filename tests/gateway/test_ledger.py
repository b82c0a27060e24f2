"""The ledger: every request one correct row, a schema that migrates itself, nothing lost."""

import asyncio
import uuid

import httpx
import psycopg2
import pytest

from aihub.gateway import db
from aihub.gateway.schema import MIGRATIONS

from .conftest import GatewayThread


def test_50_concurrent_requests_from_several_users_leave_50_correct_rows(gateway, student, database):
    students = [student(f"c{i}") for i in range(5)]

    async def one(client, who, n):
        # Each request says something different: its tokens tell its row apart.
        words = " ".join(["word"] * (n + 1))
        stream = n % 2 == 0
        body = {"model": "echo-1" if n % 3 else "deepseek:echo-2", "stream": stream,
                "messages": [{"role": "user", "content": words}], "x_test": {"delay": 0.01}}
        path = "/deepseek/v1/chat/completions" if n % 3 else "/v1/chat/completions"
        response = await client.post(path, headers=who.headers, json=body)
        assert response.status_code == 200, response.text
        return who.name, n

    async def all_of_them():
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60,
                                     limits=httpx.Limits(max_connections=100)) as client:
            return await asyncio.gather(*(one(client, students[n % 5], n) for n in range(50)))

    done = asyncio.run(all_of_them())
    assert len(done) == 50
    rows = [row for s in students for row in database.rows(s.name)]
    assert len(rows) == 50
    assert {row["status"] for row in rows} == {"ok"}
    for who in students:
        mine = database.rows(who.name)
        expected = sorted((n + 1, n + 3, n % 2 == 0) for name, n in done if name == who.name)
        # prompt: n+1 words; answer: "echo-x:" + n+1 words reversed
        assert sorted((r["prompt_tokens"], r["total_tokens"] - r["prompt_tokens"] + 1, r["stream"])
                      for r in mine) == expected
        assert all(not r["estimated"] and r["finished_at"] >= r["started_at"] for r in mine)


@pytest.fixture
def empty_database(database):
    """Another fresh database, for schema tests."""
    name = f"aihub_gw_schema_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(host=database.host, port=database.port, user=database.user,
                             password=database.password, dbname=database.name)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield dict(host=database.host, port=database.port, user=database.user, password=database.password,
               database=name)
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_concurrent_starts_migrate_once(empty_database):
    async def run():
        pools = [await db.connect(empty_database, wait=5, pool_size=2) for _ in range(6)]
        try:
            applied = await asyncio.gather(*(db.migrate(pool) for pool in pools))
            again = await db.migrate(pools[0])
            versions = await pools[0].fetch("SELECT version FROM ai_schema_version ORDER BY version")
            tables = await pools[0].fetch("SELECT tablename FROM pg_tables WHERE tablename LIKE 'ai_%' ORDER BY 1")
            views = await pools[0].fetch("SELECT viewname FROM pg_views WHERE viewname LIKE 'ai_%' ORDER BY 1")
            return applied, again, versions, tables, views
        finally:
            for pool in pools:
                await pool.close()

    applied, again, versions, tables, views = asyncio.run(run())
    newest = [v for v, _, _ in MIGRATIONS]
    assert sorted(applied, key=len) == [[]] * 5 + [newest]  # exactly one gateway migrated
    assert again == []
    assert [r["version"] for r in versions] == newest
    assert [r["tablename"] for r in tables] == ["ai_budget_overrides", "ai_schema_version", "ai_usage"]
    assert [r["viewname"] for r in views] == ["ai_usage_by_model_day", "ai_usage_by_user_day"]


def test_an_unreachable_database_is_one_clear_line():
    async def run():
        await db.connect(dict(host="127.0.0.1", port=9, user="u", password="secret-pw-123", database="d"), wait=0.5)

    with pytest.raises(db.DatabaseUnavailable) as raised:
        asyncio.run(run())
    assert "u@127.0.0.1:9/d" in str(raised.value) and "secret-pw-123" not in str(raised.value)


def test_a_crashed_gateway_leaves_no_started_rows_after_a_restart(start_gateway_process, student, database,
                                                                   make_config):
    """kill -9 mid-stream, start again: the row is 'interrupted', not 'started' forever."""
    alice = student()
    first = start_gateway_process()
    with httpx.stream("POST", f"{first.url}/deepseek/v1/chat/completions", headers=alice.headers, timeout=30,
                      json={"model": "echo-1", "stream": True, "x_test": {"stall_after": 1},
                            "messages": [{"role": "user", "content": "one two three"}]}) as response:
        chunks = response.iter_raw()  # held: a dropped iterator closes the response
        next(chunks)
        [row] = database.rows(alice.name)
        assert row["status"] == "started" and row["prompt_tokens"] > 0  # on record from the start
        assert row["reserved_tokens"] == 4096  # its answer's cap (AI_DEFAULT_MAX_TOKENS), held meanwhile
        first.kill()
    assert database.rows(alice.name)[0]["status"] == "started"

    # A second gateway alive meanwhile must not touch the first one's live rows; after
    # the crash, its start-up marks the dead one's row at once.
    second = GatewayThread(make_config())
    try:
        [row] = database.rows(alice.name)
        assert (row["status"], row["error"]) == ("interrupted", "the gateway stopped before this request ended")
        assert row["finished_at"] is not None and row["total_tokens"] == row["prompt_tokens"] > 0
        assert row["reserved_tokens"] == 0  # the dead request's reservation is released
        assert database.query("SELECT count(*) FROM ai_usage WHERE status = 'started'") == [(0,)]
    finally:
        second.stop()


def test_a_live_gateways_running_requests_are_not_swept(gateway, start_gateway, student, database):
    alice = student()
    with httpx.stream("POST", f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers, timeout=30,
                      json={"model": "echo-1", "stream": True, "x_test": {"stall_after": 1},
                            "messages": [{"role": "user", "content": "one two three"}]}) as response:
        chunks = response.iter_raw()
        next(chunks)
        start_gateway()  # its start-up sweep sees the session gateway alive
        assert database.rows(alice.name)[0]["status"] == "started"


def test_sigterm_lets_running_requests_finish(start_gateway_process, student, database):
    alice = student()
    gateway = start_gateway_process()

    async def run():
        async with httpx.AsyncClient(timeout=30) as client:
            request = asyncio.ensure_future(client.post(
                f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                json={"model": "echo-1", "stream": True, "x_test": {"delay": 0.1},
                      "messages": [{"role": "user", "content": "one two three four five"}]}))
            await asyncio.sleep(0.3)
            gateway.process.terminate()
            return await request

    response = asyncio.run(run())
    assert response.status_code == 200 and response.text.rstrip().endswith("[DONE]")
    assert gateway.process.wait(20) == 0
    [row] = database.rows(alice.name)
    assert row["status"] == "ok"


def test_the_views_sum_per_day(gateway, student, database):
    alice = student()
    for n in range(3):
        httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=alice.headers,
                   json={"model": "echo-1", "messages": [{"role": "user", "content": "a b"}]})
    [per_user] = database.query(
        "SELECT requests, rejected, failed, prompt_tokens, completion_tokens, total_tokens, estimated_requests"
        " FROM ai_usage_by_user_day WHERE username = %s", alice.name)
    assert per_user == (3, 0, 0, 6, 9, 15, 0)
    [per_model] = database.query(
        "SELECT requests, users FROM ai_usage_by_model_day WHERE provider = 'deepseek' AND model = 'echo-1'"
        " AND day = (now() AT TIME ZONE 'UTC')::date")
    assert per_model[0] >= 3 and per_model[1] >= 1


def test_without_its_database_the_gateway_refuses_with_503(start_gateway, student):
    """No ledger, no unmetered calls: a clear 503, never a 500."""
    gateway = start_gateway()
    gateway.run(gateway.gateway.pool.close())
    response = httpx.post(f"{gateway.url}/deepseek/v1/chat/completions", headers=student().headers,
                          json={"model": "echo-1", "messages": [{"role": "user", "content": "hi"}]})
    assert (response.status_code, response.json()["error"]["code"]) == (503, "ledger_unavailable")
    health = httpx.get(f"{gateway.url}/health")
    assert (health.status_code, health.json()["status"]) == (503, "error")


def test_removing_a_students_ledger_rows_leaves_everyone_elses(empty_database):
    """What `aihub.students delete --ledger` and the rehearsal's clean-up run."""
    from aihub.database import remove_ledger_rows

    connection = psycopg2.connect(**empty_database)
    try:
        with connection, connection.cursor() as cursor:
            assert remove_ledger_rows(cursor, ["alice"]) == 0  # before the gateway's first start: no tables

        async def migrate():
            pool = await db.connect(empty_database, wait=5, pool_size=1)
            await db.migrate(pool)
            await pool.close()
        asyncio.run(migrate())

        with connection, connection.cursor() as cursor:
            for name in ("alice", "alice", "bob"):
                cursor.execute("INSERT INTO ai_usage (username, provider, model, endpoint, instance_id)"
                               " VALUES (%s, 'deepseek', 'deepseek-chat', 'chat/completions', 1)", (name,))
            cursor.execute("INSERT INTO ai_budget_overrides (username, daily_tokens) VALUES ('alice', 5), ('bob', 7)")
            assert remove_ledger_rows(cursor, ["alice"]) == 3
            cursor.execute("SELECT username FROM ai_usage UNION ALL SELECT username FROM ai_budget_overrides")
            assert sorted(name for (name,) in cursor.fetchall()) == ["bob", "bob"]
    finally:
        connection.close()
