"""The AI gateway's token policy on the real stack, from outside it (the hub's published
port, as an editor on a student's laptop would call): a personal token is refused by
default, and a stopped server's token stops working within 5 s."""

import time

import requests

MODELS = "/services/ai-gateway/v1/models"


def gateway_status(stack, token: str) -> tuple[int, dict]:
    """The gateway's answer to GET /v1/models through the hub's published port."""
    response = requests.get(stack.url + MODELS, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    is_json = response.headers.get("content-type", "").startswith("application/json")
    return response.status_code, response.json() if is_json else {}


def test_a_new_servers_token_works_after_a_hub_restart(stack, server):
    """The hub keeps the server's token digest in its state (aihub.server_token), so a
    token the gateway has never seen is still known as the server's after a restart."""
    server.stop_server()
    server.start_server()
    server.open_lab()
    server_token = server.run_cell("import os; print(os.environ['JUPYTERHUB_API_TOKEN'])").strip()
    stack.compose("restart", "hub")
    stack.wait_healthy()
    deadline = time.monotonic() + 60
    while (status := gateway_status(stack, server_token)[0]) in (404, 502, 503) and time.monotonic() < deadline:
        time.sleep(1)  # the hub's proxy routes come back with the hub
    assert status == 200, gateway_status(stack, server_token)


def test_a_personal_token_from_the_hubs_api_is_refused_by_default(stack, server):
    made = server.api("POST", f"/hub/api/users/{server.username}/tokens", json={"note": "my editor"})
    assert made.status_code == 201, made.text
    personal = made.json()["token"]
    status, body = gateway_status(stack, personal)
    assert status == 403 and body["error"]["code"] == "personal_token", body
    assert "AI_ALLOW_PERSONAL_TOKENS" in body["error"]["message"] and personal not in body["error"]["message"]
    # the server's own token, the one the student's notebooks use, works
    server_token = server.run_cell("import os; print(os.environ['JUPYTERHUB_API_TOKEN'])").strip()
    assert gateway_status(stack, server_token)[0] == 200


def test_a_stopped_servers_token_is_refused_within_5_seconds(stack, server):
    # Run in this file's order, the server has outlived the hub restart above: JupyterHub
    # revokes its token at stop only if the spawner took it back (aihub.spawner.poll).
    server_token = server.run_cell("import os; print(os.environ['JUPYTERHUB_API_TOKEN'])").strip()
    assert gateway_status(stack, server_token)[0] == 200  # fresh in the gateway's cache
    server.stop_server()
    stopped = time.monotonic()
    while gateway_status(stack, server_token)[0] == 200:
        assert time.monotonic() - stopped < 5, "a stopped server's token still works after 5 s"
        time.sleep(0.25)
    status, body = gateway_status(stack, server_token)
    assert status == 401 and body["error"]["code"] == "invalid_token", body
