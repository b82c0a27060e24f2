"""Who may use the gateway: a hub user's token with the gateway's scope, nothing else.

Refused requests are answered 401/403 in the OpenAI format, reach no vendor, and leave
no ledger row: they cost nothing. (Design choice: no row at all, since there is no
verified user to charge, and a row per stranger would let anyone fill the table.)
"""

import httpx
import pytest

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


def test_an_admins_token_with_the_scope_works(gateway, hub):
    hub.create_user("teacher")
    token = hub.token("teacher", [SCOPE])
    assert post(gateway, {"Authorization": f"Bearer {token}"}).status_code == 200


def test_ai_switched_off_refuses_everyone(start_gateway, student):
    off = start_gateway(AI_ENABLED="false")
    assert_error(post(off, student().headers), 403, "ai_disabled")
