"""aihub.swarm: students' servers as Swarm services on the workers, with their homes
on the node where they were made or on NFS."""

import asyncio
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from docker.errors import NotFound
from traitlets.config import Config

from aihub import settings
from aihub.server_token import STATE_KEY
from aihub.spawner import ClassroomSpawner
from aihub.swarm import (NODE_STATE_KEY, STUDENT_COMMAND, WORKERS_ONLY, SwarmClassroomSpawner, home_mount,
                         least_busy_worker, node_unavailable, placement_constraints, spawner_class, student_image)

DRAINED = {"ID": "n1", "Spec": {"Role": "worker", "Availability": "drain"}, "Description": {"Hostname": "worker1"},
           "Status": {"State": "ready"}}
ACTIVE = {"ID": "n2", "Description": {"Hostname": "worker2"}, "Spec": {"Role": "worker", "Availability": "active"},
          "Status": {"State": "ready"}}
DOWN = {"ID": "n3", "Description": {"Hostname": "worker3"}, "Spec": {"Role": "worker", "Availability": "active"},
        "Status": {"State": "down"}}


def run(coroutine):
    return asyncio.run(coroutine)


class FakeSwarm:
    """The Docker API calls the spawner makes, answered from a few dicts."""

    def __init__(self, nodes=(), task_state="running", node_id="n2"):
        self.nodes = {node["ID"]: node for node in nodes}
        self.task = {"ID": "t1", "NodeID": node_id, "Status": {"State": task_state}}
        self.calls = []
        self.service = None

    async def __call__(self, method, *args, **kwargs):
        self.calls.append((method, args, kwargs))
        if method == "inspect_node":
            if args[0] not in self.nodes:
                raise NotFound("no such node")
            return self.nodes[args[0]]
        if method == "inspect_image":
            return {"Config": {"Cmd": ["start-singleuser.sh"]}}
        if method == "create_service":
            self.service = {"ID": "s1", "Spec": {"Name": kwargs["name"], "TaskTemplate": {
                "ContainerSpec": kwargs["task_template"]["ContainerSpec"]}}}
            return {"ID": "s1"}
        if method == "inspect_service":
            if self.service is None:
                raise NotFound("no such service")
            return self.service
        if method == "remove_service":
            self.service = None
            return None
        if method == "tasks":
            return [self.task]
        if method == "nodes":
            return list(self.nodes.values())
        if method == "services":
            assert kwargs["filters"] == {"label": ["org.aihub.project=class1", "org.aihub.role=student-server"]}
            return []
        raise AssertionError(f"unexpected Docker call {method}")

    def created(self) -> dict:
        return next(kwargs for method, _, kwargs in self.calls if method == "create_service")


def make_spawner(fake: FakeSwarm, **config) -> SwarmClassroomSpawner:
    c = Config()
    c.DockerSpawner.network_name = "class1-users"
    c.DockerSpawner.prefix = "class1"
    c.DockerSpawner.volumes = {"{prefix}-user-{username}": "/home/jovyan"}
    c.SwarmClassroomSpawner.extra_endpoint_spec = {"mode": "dnsrr"}
    for name, value in config.items():
        setattr(c.SwarmClassroomSpawner, name, value)
    spawner = SwarmClassroomSpawner(
        config=c, user=SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice"),
        hub=SimpleNamespace(api_url="http://hub:8081/hub/api", base_url="/hub/", public_host="",
                            url="http://hub:8081/hub/"))
    spawner.user_options = {}
    spawner.docker = fake
    return spawner


def test_the_mode_setting_chooses_containers_or_services():
    assert spawner_class(SimpleNamespace(spawner_mode="docker")) is ClassroomSpawner
    assert spawner_class(SimpleNamespace(spawner_mode="swarm")) is SwarmClassroomSpawner
    # One set of classroom logic (turns, token, AI option) over Swarm's service handling.
    assert issubclass(SwarmClassroomSpawner, ClassroomSpawner)
    assert SwarmClassroomSpawner.queue is ClassroomSpawner.queue


def test_the_students_image_comes_from_the_registry_when_one_is_named():
    named = SimpleNamespace(image_registry="registry.example.edu:5000", singleuser_image="aihub-singleuser:0.1.0")
    assert student_image(named) == "registry.example.edu:5000/aihub-singleuser:0.1.0"
    assert student_image(SimpleNamespace(image_registry="", singleuser_image="x:1")) == "x:1"


def test_the_servers_command_is_the_students_images_own():
    """The manager's engine need not hold the image to read its command."""
    dockerfile = (Path(__file__).resolve().parents[2] / "singleuser" / "Dockerfile").read_text()
    assert json.loads(re.search(r"^CMD (.+)$", dockerfile, re.M)[1]) == STUDENT_COMMAND
    spawner = make_spawner(FakeSwarm())
    assert run(spawner.get_command())[0] == "jupyterhub-singleuser"
    assert not [call for call in spawner.docker.calls if call[0] == "inspect_image"]


def test_servers_run_on_workers_and_a_home_node_pins_them():
    assert placement_constraints("") == [WORKERS_ONLY] == ["node.role==worker"]
    assert placement_constraints("n1") == ["node.role==worker", "node.id==n1"]


def test_a_home_on_a_node_is_a_plain_local_volume():
    mount = home_mount("class1-user-alice", "node")
    assert mount == {"Target": "/home/jovyan", "Source": "class1-user-alice", "Type": "volume", "ReadOnly": False}


def test_a_home_on_nfs_is_a_local_volume_mounting_the_students_folder():
    mount = home_mount("class1-user-alice", "nfs", "nfs.example.edu", "/srv/aihub-homes/")
    assert mount["Type"] == "volume" and mount["Source"] == "class1-user-alice"
    assert mount["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": {
        "type": "nfs", "o": "addr=nfs.example.edu,rw,nfsvers=4,hard",
        "device": ":/srv/aihub-homes/class1-user-alice"}}


@pytest.mark.parametrize("node, words", [
    (DRAINED, ["worker1", "drained", "docker node update --availability active worker1"]),
    (DOWN, ["worker3", "down"]),
    (None, ["left the swarm"]),
])
def test_an_unavailable_home_node_is_one_line_naming_it(node, words):
    reason = node_unavailable(node)
    assert "\n" not in reason and all(word in reason for word in words)
    assert node_unavailable(ACTIVE) == ""


def test_a_first_server_is_a_dnsrr_service_pinned_to_the_least_busy_worker():
    fake = FakeSwarm(nodes=[DRAINED, ACTIVE])
    spawner = make_spawner(fake, extra_networks=["class1-models"])
    run(spawner.create_object())
    created = fake.created()
    template = created["task_template"]
    assert created["name"] == "class1-alice"
    assert template["Placement"]["Constraints"] == ["node.role==worker", "node.id==n2"]
    assert spawner.get_state()[NODE_STATE_KEY] == "n2"
    assert [network["Target"] for network in template["Networks"]] == ["class1-users", "class1-models"]
    assert template["ContainerSpec"]["Mounts"][0]["Type"] == "volume"
    assert created["endpoint_spec"]["Mode"] == "dnsrr"
    # No container to connect to networks afterwards: the service named them all.
    assert [method for method, _, _ in fake.calls if method.startswith("connect")] == []


def test_the_least_busy_available_worker_gets_a_new_student():
    manager = {"ID": "m", "Spec": {"Role": "manager", "Availability": "active"}, "Status": {"State": "ready"}}
    other = {**ACTIVE, "ID": "n4", "Description": {"Hostname": "worker4"}}
    tasks = [{"NodeID": "n2"}, {"NodeID": "n2"}, {"NodeID": "n4"}, {"NodeID": "m"}]
    assert least_busy_worker([manager, DRAINED, DOWN, ACTIVE, other], tasks) == "n4"
    assert least_busy_worker([manager, ACTIVE, other], []) == "n2"  # a tie: by host name
    with pytest.raises(RuntimeError, match="No worker node is available"):
        least_busy_worker([manager, DRAINED, DOWN], [])


def test_the_home_node_outlives_a_stop_and_a_hub_restart():
    spawner = make_spawner(FakeSwarm())
    spawner.home_node = "n1"
    spawner.api_token = "token"
    state = spawner.get_state()
    restarted = make_spawner(FakeSwarm())
    restarted.load_state(state)
    restarted.clear_state()  # the server stopped: the files are still on n1
    assert restarted.get_state().get(NODE_STATE_KEY) == "n1" and STATE_KEY not in restarted.get_state()


def test_a_later_server_is_pinned_to_the_home_node():
    fake = FakeSwarm(nodes=[ACTIVE])
    spawner = make_spawner(fake)
    spawner.home_node = "n2"
    run(spawner.create_object())
    assert fake.created()["task_template"]["Placement"]["Constraints"] == ["node.role==worker", "node.id==n2"]


def test_a_drained_home_node_refuses_the_start_with_its_name_and_the_fix():
    fake = FakeSwarm(nodes=[DRAINED])
    spawner = make_spawner(fake)
    spawner.home_node = "n1"
    with pytest.raises(RuntimeError, match="worker node worker1, which is drained.*--availability active worker1"):
        run(spawner.create_object())
    assert fake.service is None


def test_with_nfs_homes_servers_go_to_any_worker_even_after_one_ran(tmp_path, monkeypatch):
    monkeypatch.setattr("aihub.swarm.NFS_HOMES_MOUNT", str(tmp_path))
    monkeypatch.setattr("os.chown", lambda path, uid, gid: None)
    fake = FakeSwarm(nodes=[DRAINED])
    spawner = make_spawner(fake, home_storage="nfs", nfs_server="nfs.example.edu", nfs_path="/srv/aihub-homes")
    spawner.home_node = "n1"  # left over from node storage: ignored
    run(spawner.create_object())
    template = fake.created()["task_template"]
    assert template["Placement"]["Constraints"] == ["node.role==worker"]
    assert template["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["DriverConfig"]["Options"]["device"] == \
        ":/srv/aihub-homes/class1-user-alice"
    assert (tmp_path / "class1-user-alice").is_dir()


def test_nfs_homes_without_the_export_mounted_in_the_hub_say_how_to_deploy(tmp_path, monkeypatch):
    monkeypatch.setattr("aihub.swarm.NFS_HOMES_MOUNT", str(tmp_path / "absent"))
    spawner = make_spawner(FakeSwarm(), home_storage="nfs", nfs_server="nfs.example.edu", nfs_path="/x")
    with pytest.raises(RuntimeError, match="docker-stack.nfs.yml"):
        run(spawner.create_object())


@pytest.mark.parametrize("node, task_state, stopped", [
    (DRAINED, "pending", True),   # moved off its drained node, and nowhere else to go
    (ACTIVE, "pending", False),   # just being placed
    (DRAINED, "running", False),
])
def test_poll_sees_a_server_stranded_by_its_home_node(node, task_state, stopped):
    fake = FakeSwarm(nodes=[node], task_state=task_state)
    fake.service = {"ID": "s1", "Spec": {"TaskTemplate": {"ContainerSpec": {"Env": ["JUPYTERHUB_API_TOKEN=tok"]}}}}
    spawner = make_spawner(fake)
    spawner.home_node = node["ID"]
    status = run(spawner.poll())
    assert (status is not None) == stopped
    # A stranded server's service is removed: it must not start when the node returns.
    assert (fake.service is None) == stopped
    if stopped:
        assert "worker1" in status


def test_after_a_hub_restart_poll_takes_the_token_from_the_service():
    fake = FakeSwarm(nodes=[ACTIVE])
    fake.service = {"ID": "s1", "Spec": {"TaskTemplate": {"ContainerSpec": {
        "Env": ["A=1", "JUPYTERHUB_API_TOKEN=tok=en"]}}}}
    spawner = make_spawner(fake)
    assert run(spawner.poll()) is None and spawner.api_token == "tok=en"


@pytest.mark.parametrize("environ, problem", [
    ({"HOME_STORAGE": "nfs"}, "HOME_NFS_SERVER is empty but HOME_STORAGE=nfs"),
    ({"IMAGE_REGISTRY": "http://registry:5000"}, "IMAGE_REGISTRY='http://registry:5000' is not a registry address"),
    ({"SPAWNER_MODE": "kubernetes"}, "SPAWNER_MODE='kubernetes' must be one of docker, swarm"),
    ({"HOME_NFS_PATH": "homes"}, "HOME_NFS_PATH='homes' must be an absolute path"),
])
def test_swarm_settings_are_checked(environ, problem):
    with pytest.raises(settings.ConfigError) as error:
        settings.load(environ)
    assert str(error.value).startswith(problem)


def test_swarm_settings_parse():
    loaded = settings.load({"SPAWNER_MODE": "swarm", "IMAGE_REGISTRY": "10.0.0.5:5000/aihub",
                            "HOME_STORAGE": "nfs", "HOME_NFS_SERVER": "nfs.example.edu",
                            "HOME_NFS_PATH": "/export/homes/"})
    assert (loaded.spawner_mode, loaded.image_registry, loaded.home_storage, loaded.home_nfs_server,
            loaded.home_nfs_path) == ("swarm", "10.0.0.5:5000/aihub", "nfs", "nfs.example.edu", "/export/homes")
    defaults = settings.load({})
    assert (defaults.spawner_mode, defaults.image_registry, defaults.home_storage) == ("docker", "", "node")
