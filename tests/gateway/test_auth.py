"""Who may use the gateway: a running server's own token (the policy in aihub.gateway.auth),
and, where the admin allows personal tokens, a personal token that expires.

Refused requests are answered 401/403 in the OpenAI format, reach no vendor, and leave
no ledger row: they cost nothing. (Design choice: no row at all, since there is no
verified user to charge, and a row per stranger would let anyone fill the table.)
"""

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from aihub.gateway.auth import CACHE_SECONDS

from .conftest import ADMIN_TOKEN, DEEPSEEK_KEY, GATEWAY_TOKEN, SCOPE

CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "who am I"}]}


def post(gateway, headers, path="/deepseek/v1/chat/completions", body=CHAT):
    return httpx.post(gateway.url + path, headers=headers, json=body, timeout=30)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert "\n" not in error["message"]
    return error["message"]


def count_upstream_calls(upstream):
    return sum(1 for r in upstream.state.requests if r.path.endswith("/chat/completions"))


@pytest.mark.parametrize("headers, status, code", [
    ({}, 401, "missing_token"),
    ({"Authorization": ""}, 401, "missing_token"),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "missing_token"),
    ({"Authorization": "Bearer not-a-token-the-hub-knows"}, 401, "invalid_token"),
    ({"Authorization": "Bearer"}, 401, "missing_token"),
])
def test_no_token_or_a_bad_one_is_401_and_costs_nothing(gateway, upstream, database, headers, status, code):
    before_calls, before_rows = count_upstream_calls(upstream), database.query("SELECT count(*) FROM ai_usage")
    message = assert_error(post(gateway, headers), status, code)
    assert "not-a-token" not in message  # the token is never echoed
    assert count_upstream_calls(upstream) == before_calls
    assert database.query("SELECT count(*) FROM ai_usage") == before_rows


def test_a_token_without_the_gateway_scope_is_403_and_costs_nothing(gateway, hub, upstream, database):
    hub.create_user("no-scope-user")
    token = hub.token("no-scope-user", ["read:users:name!user"])
    before = count_upstream_calls(upstream)
    message = assert_error(post(gateway, {"Authorization": f"Bearer {token}"}), 403, "missing_scope")
    assert SCOPE in message and token not in message
    assert count_upstream_calls(upstream) == before
    assert database.rows("no-scope-user") == []
    # the model list is refused too
    response = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert_error(response, 403, "missing_scope")


def test_a_service_token_is_not_a_user(gateway):
    for token in (ADMIN_TOKEN, GATEWAY_TOKEN):
        assert_error(post(gateway, {"Authorization": f"Bearer {token}"}), 403, "not_a_user")


def test_the_token_a_spawned_server_gets_works_and_is_charged_to_its_user(gateway, hub, database, upstream):
    """The real thing: Spawner.server_token_scopes gives the student's token the scope."""
    hub.create_user("spawned")
    server_token = hub.start_server("spawned")
    try:
        response = post(gateway, {"Authorization": f"Bearer {server_token}"})
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "echo-1: I ma ohw"
        # the vendor saw the admin's key, never the student's token
        last = [r for r in upstream.state.requests if r.path.endswith("/chat/completions")][-1]
        assert last.authorization == f"Bearer {DEEPSEEK_KEY}"
        [row] = database.settled_rows("spawned")
        assert (row["status"], row["total_tokens"], row["estimated"]) == ("ok", 3 + 4, False)
    finally:
        hub.stop_server("spawned")


def test_the_token_header_form_works_too(gateway, student):
    alice = student("alice")
    response = post(gateway, {"Authorization": f"token {alice.token}"})
    assert response.status_code == 200, response.text


def test_an_admins_server_token_works(gateway, hub):
    hub.create_user("teacher")
    token = hub.start_server("teacher")
    assert post(gateway, {"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("expires_in", [None, 3600])
def test_a_personal_token_is_refused_by_default_and_costs_nothing(gateway, hub, student, upstream, database,
                                                                  expires_in):
    """The hub's Token page makes tokens with the same owner and scopes as a server's."""
    alice = student("personal")  # her server runs: its token works, a personal one does not
    token = hub.token(alice.name, [SCOPE], expires_in=expires_in)
    before = count_upstream_calls(upstream)
    message = assert_error(post(gateway, {"Authorization": f"Bearer {token}"}), 403, "personal_token")
    assert "JUPYTERHUB_API_TOKEN" in message and "AI_ALLOW_PERSONAL_TOKENS" in message and token not in message
    # the token the hub's Token page makes by default (every scope of its owner) too
    default = hub.api.post(f"/users/{alice.name}/tokens", json={"note": "laptop"}).json()["token"]
    assert_error(post(gateway, {"Authorization": f"Bearer {default}"}), 403, "personal_token")
    assert count_upstream_calls(upstream) == before
    assert database.rows(alice.name) == []
    assert post(gateway, alice.headers).status_code == 200


def test_allowed_personal_tokens_work_when_they_expire_and_are_metered(start_gateway, hub, database):
    allowing = start_gateway(AI_ALLOW_PERSONAL_TOKENS="true")
    hub.create_user("laptop-user")  # no server running: an editor on her laptop
    expiring = hub.token("laptop-user", [SCOPE], expires_in=30 * 86400)
    response = post(allowing, {"Authorization": f"Bearer {expiring}"})
    assert response.status_code == 200, response.text
    [row] = database.rows("laptop-user")
    assert row["status"] == "ok" and row["total_tokens"] > 0
    forever = hub.token("laptop-user", [SCOPE])
    message = assert_error(post(allowing, {"Authorization": f"Bearer {forever}"}), 403, "token_never_expires")
    assert "/hub/token" in message and "expiry" in message
    assert len(database.rows("laptop-user")) == 1


def test_a_stopped_servers_token_is_refused_within_5_seconds(gateway, hub):
    hub.create_user("stopping")
    token = hub.start_server("stopping")
    headers = {"Authorization": f"Bearer {token}"}
    assert post(gateway, headers).status_code == 200  # the gateway's cache now holds it
    hub.stop_server("stopping")
    stopped = time.monotonic()
    while post(gateway, headers).status_code == 200:
        assert time.monotonic() - stopped < 5, "a stopped server's token still works after 5 s"
        time.sleep(0.2)
    assert_error(post(gateway, headers), 401, "invalid_token")


def test_thirty_students_calling_without_pause_cost_the_hub_few_requests(gateway, student):
    """Each token is checked with the hub at most once per CACHE_SECONDS, and its kind
    (server or personal) looked up once."""
    students = [student("busy") for _ in range(30)]
    hub_auth = gateway.gateway.hub_auth
    calls = []
    for name in ("_api_request", "_hub_get"):
        method = getattr(hub_auth, name)

        async def counted(*args, _method=method, **kwargs):
            calls.append(args)
            return await _method(*args, **kwargs)

        setattr(hub_auth, name, counted)
    seconds, answered = 6.0, []

    def call_constantly(who):
        with httpx.Client(headers=who.headers, timeout=30) as client:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                answered.append(client.post(gateway.url + "/deepseek/v1/chat/completions", json=CHAT).status_code)

    try:
        with ThreadPoolExecutor(len(students)) as pool:
            list(pool.map(call_constantly, students))
    finally:
        for name in ("_api_request", "_hub_get"):
            delattr(hub_auth, name)
    assert set(answered) == {200} and len(answered) > 3 * len(students)
    # per student: one check per CACHE_SECONDS (+1 for the window's edges) and one kind lookup
    most = len(students) * (seconds / CACHE_SECONDS + 2)
    print(f"{len(answered)} calls from {len(students)} students in {seconds:g} s cost the hub "
          f"{len(calls)} requests ({len(calls) / seconds:.1f}/s)")
    assert len(calls) <= most, len(calls)


def test_ai_switched_off_refuses_everyone(start_gateway, student):
    off = start_gateway(AI_ENABLED="false")
    assert_error(post(off, student().headers), 403, "ai_disabled")
