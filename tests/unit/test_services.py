"""aihub.services: the idle culler, and a role with just the scopes it needs."""

import subprocess
import sys

import pytest
from jupyterhub.scopes import scope_definitions

from aihub.services import IDLE_CULLER, hub_roles, hub_services
from aihub.settings import load

CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def culler_options(service: dict) -> dict[str, int]:
    """{'--timeout': 3600, ...} from the service's command line."""
    options = [arg.split("=", 1) for arg in service["command"] if arg.startswith("--")]
    return {name: int(value) for name, value in options}


def test_no_timeout_means_no_culler_and_no_role():
    settings = load({"CULL_IDLE_TIMEOUT": "0"})
    assert hub_services(settings) == []
    assert hub_roles(settings) == []


@pytest.mark.parametrize("timeout, seconds", [("", 3600), ("90", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800)])
def test_the_culler_runs_with_the_timeout_in_seconds(timeout, seconds):
    [service] = hub_services(load({"CULL_IDLE_TIMEOUT": timeout}))
    assert service["name"] == IDLE_CULLER
    assert service["command"][:3] == [sys.executable, "-m", "jupyterhub_idle_culler"]
    options = culler_options(service)
    assert options["--timeout"] == seconds
    assert 10 <= options["--cull-every"] <= 300


def test_the_culler_role_has_exactly_the_scopes_it_needs():
    [role] = hub_roles(load({}))
    assert role["services"] == [IDLE_CULLER]
    assert sorted(role["scopes"]) == sorted(CULLER_SCOPES)
    assert all(scope in scope_definitions for scope in role["scopes"])


def test_the_installed_culler_accepts_the_options_given():
    [service] = hub_services(load({}))
    result = subprocess.run(
        service["command"][:3] + ["--help"], capture_output=True, text=True, timeout=60, check=True,
    )
    for option in culler_options(service):
        assert f"{option}=" in result.stdout
