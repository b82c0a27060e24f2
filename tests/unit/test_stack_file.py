"""docker-stack.yml and docker-stack.nfs.yml: the compose stack's services on a Swarm,
pinned where their data is, reachable without IPVS, and in step with the hub's code."""

import re
from pathlib import Path

import pytest
import yaml

from aihub.settings import COMPOSE_SETTINGS, SETTINGS
from aihub.swarm import NFS_HOMES_MOUNT, home_mount

REPO = Path(__file__).resolve().parents[2]
STACK = yaml.safe_load((REPO / "docker-stack.yml").read_text())
NFS = yaml.safe_load((REPO / "docker-stack.nfs.yml").read_text())
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
# Compose-only: the students' image is pushed, not run; the reaper and the backup act on
# one engine's containers (README, Swarm: what differs).
COMPOSE_ONLY = {"singleuser", "reaper", "backup"}


def test_the_stack_runs_every_compose_service_but_the_compose_only_ones():
    assert set(STACK["services"]) == set(COMPOSE["services"]) - COMPOSE_ONLY


@pytest.mark.parametrize("service", sorted(STACK["services"]))
def test_each_service_runs_on_a_manager_by_dns_round_robin(service):
    deploy = STACK["services"][service]["deploy"]
    assert deploy["placement"]["constraints"] == ["node.role==manager"]
    # Swarm's virtual IPs need IPVS in every node's kernel; names resolve without it.
    assert deploy["endpoint_mode"] == "dnsrr"


@pytest.mark.parametrize("service", sorted(STACK["services"]))
def test_each_service_runs_what_compose_runs(service):
    ours, theirs = STACK["services"][service], COMPOSE["services"][service]
    assert ours.get("command") == theirs.get("command")
    assert ours.get("networks") == theirs.get("networks") or theirs.get("network_mode") == "none"
    # The same image, from the admin's registry.
    assert re.sub(r"^\$\{IMAGE_REGISTRY[^}]*\}/", "", ours["image"]) == theirs["image"]


def test_the_hubs_port_is_published_on_its_node_not_through_the_ingress_mesh():
    assert STACK["services"]["hub"]["ports"] == [{"target": 8000, "published": "${HUB_PORT:-8000}", "mode": "host"}]
    assert STACK["services"]["hub"]["environment"]["SPAWNER_MODE"] == "swarm"


def test_students_networks_span_the_nodes_under_the_names_the_hub_gives_its_spawner():
    networks = STACK["networks"]
    assert networks["users"] == {"name": "${COMPOSE_PROJECT_NAME:-aihub}-users", "driver": "overlay", "attachable": True}
    assert networks["models"]["name"] == "${COMPOSE_PROJECT_NAME:-aihub}-models"
    assert networks["db"] == {"driver": "overlay", "internal": True}
    assert COMPOSE["networks"]["users"]["name"] == "${COMPOSE_PROJECT_NAME}-users"


def test_the_nfs_file_mounts_the_export_where_the_hub_makes_students_folders():
    assert NFS["services"]["hub"]["volumes"] == [f"nfs-homes:{NFS_HOMES_MOUNT}"]
    options = NFS["volumes"]["nfs-homes"]["driver_opts"]
    students = home_mount("v", "nfs", "${HOME_NFS_SERVER:?set HOME_NFS_SERVER in .env}",
                          "${HOME_NFS_PATH:-/srv/aihub-homes}")["VolumeOptions"]["DriverConfig"]["Options"]
    # The hub and the students' servers mount the same export the same way.
    assert options["o"] == students["o"] and options["type"] == students["type"] == "nfs"
    assert students["device"] == options["device"] + "/v"


@pytest.mark.parametrize("stack_file", ["docker-stack.yml", "docker-stack.nfs.yml"])
def test_each_variable_of_the_stack_files_is_a_documented_setting_with_its_default(stack_file):
    documented = {setting.name: setting for setting in SETTINGS + COMPOSE_SETTINGS}
    found = re.findall(r"\$\{([A-Z_]+)(?::([-?])([^}]*))?\}", (REPO / stack_file).read_text())
    assert found
    for name, op, value in found:
        assert name in documented, f"{stack_file} uses {name}: add it to the settings tables"
        if op == "-":
            assert value == documented[name].default, name
