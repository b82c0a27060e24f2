"""aihub.services: the idle culler and the AI gateway, each with just the scopes it needs."""

import subprocess
import sys

import pytest
from jupyterhub.scopes import scope_definitions

from aihub.services import (
    CLASS_TOOLS, CLASS_TOOLS_SCOPES, GATEWAY, GATEWAY_ACCESS, GATEWAY_SCOPES, IDLE_CULLER, hub_roles, hub_services,
    server_token_scopes,
)
from aihub.settings import load

SECRET = {"GATEWAY_API_TOKEN": "gateway-token-for-tests", "CLASS_TOOLS_API_TOKEN": "class-tools-token-for-tests"}
NO_GATEWAY = {"AI_KEY_MODE": "direct"}

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def culler_options(service: dict) -> dict[str, int]:
    """{'--timeout': 3600, ...} from the service's command line."""
    options = [arg.split("=", 1) for arg in service["command"] if arg.startswith("--")]
    return {name: int(value) for name, value in options}


def named(items: list[dict], name: str) -> dict:
    [item] = [item for item in items if item["name"] == name]
    return item


def test_no_timeout_means_no_culler_and_no_role():
    settings = load({"CULL_IDLE_TIMEOUT": "0", **NO_GATEWAY})
    assert [service["name"] for service in hub_services(settings, SECRET)] == [CLASS_TOOLS]
    assert [role["name"] for role in hub_roles(settings)] == [CLASS_TOOLS]


def test_the_class_tools_have_their_token_and_only_their_scopes():
    settings = load({})
    assert named(hub_services(settings, SECRET), CLASS_TOOLS) == {
        "name": CLASS_TOOLS, "api_token": SECRET["CLASS_TOOLS_API_TOKEN"]}
    role = named(hub_roles(settings), CLASS_TOOLS)
    assert role["services"] == [CLASS_TOOLS] and role["scopes"] == CLASS_TOOLS_SCOPES
    assert all(scope in scope_definitions for scope in role["scopes"])


@pytest.mark.parametrize("timeout, seconds", [("", 3600), ("90", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800)])
def test_the_culler_runs_with_the_timeout_in_seconds(timeout, seconds):
    service = named(hub_services(load({"CULL_IDLE_TIMEOUT": timeout, **NO_GATEWAY}), SECRET), IDLE_CULLER)
    assert service["name"] == IDLE_CULLER
    assert service["command"][:3] == [sys.executable, "-m", "jupyterhub_idle_culler"]
    options = culler_options(service)
    assert options["--timeout"] == seconds
    assert 10 <= options["--cull-every"] <= 300


def test_the_culler_role_has_exactly_the_scopes_it_needs():
    role = named(hub_roles(load(NO_GATEWAY)), IDLE_CULLER)
    assert role["services"] == [IDLE_CULLER]
    assert sorted(role["scopes"]) == sorted(CULLER_SCOPES)
    assert all(scope in scope_definitions for scope in role["scopes"])


def test_the_installed_culler_accepts_the_options_given():
    service = named(hub_services(load(NO_GATEWAY), SECRET), IDLE_CULLER)
    result = subprocess.run(
        service["command"][:3] + ["--help"], capture_output=True, text=True, timeout=60, check=True,
    )
    for option in culler_options(service):
        assert f"{option}=" in result.stdout


def test_the_gateway_is_registered_by_default_with_its_token():
    services = {service["name"]: service for service in hub_services(load({}), SECRET)}
    gateway = services[GATEWAY]
    assert gateway["url"] == "http://gateway:8090"
    assert gateway["api_token"] == SECRET["GATEWAY_API_TOKEN"]
    assert "command" not in gateway, "the gateway runs in its own container"


def test_users_and_their_server_tokens_may_call_the_gateway():
    settings = load({})
    user_role = next(role for role in hub_roles(settings) if role["name"] == "user")
    assert sorted(user_role["scopes"]) == sorted(["self", GATEWAY_ACCESS])
    assert GATEWAY_ACCESS in server_token_scopes(settings)
    assert {"users:activity!user", "access:servers!server"} <= set(server_token_scopes(settings))


@pytest.mark.parametrize("environ", [NO_GATEWAY, {"AI_ENABLED": "false"}])
def test_without_the_gateway_nothing_refers_to_it(environ):
    settings = load(environ)
    assert GATEWAY not in [service["name"] for service in hub_services(settings, SECRET)]
    assert all(role["name"] not in ("user", GATEWAY) for role in hub_roles(settings))
    assert GATEWAY_ACCESS not in server_token_scopes(settings)


def test_the_gateway_may_read_servers_state_and_tokens_and_nothing_more():
    """It tells a server's token (digest in the server's state) from a personal one."""
    role = named(hub_roles(load({})), GATEWAY)
    assert role == {"name": GATEWAY, "scopes": GATEWAY_SCOPES, "services": [GATEWAY]}
    assert sorted(GATEWAY_SCOPES) == ["admin:server_state", "read:servers", "read:tokens"]
    assert all(scope in scope_definitions for scope in role["scopes"])
