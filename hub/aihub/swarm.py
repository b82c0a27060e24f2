"""Students' servers on a Docker Swarm: one service per student, on the worker nodes.

SwarmClassroomSpawner is ClassroomSpawner (turns, queue, server token, AI option) on top
of DockerSpawner's SwarmSpawner: its method resolution order puts ClassroomSpawner's
logic first and SwarmSpawner's service handling under it, so nothing is copied.

Where a student's home volume lives (HOME_STORAGE):
- node: a plain local volume on one worker: the spawner picks the least busy worker at
  the student's first start, records it in its state (kept in the hub's database) and
  pins every server of that student to it. A drained or lost worker keeps its students
  out until it is back, and they are told so in one line naming the node.
- nfs: a volume of the local driver mounting HOME_NFS_SERVER:HOME_NFS_PATH/<volume>, so
  any worker can run the server and Swarm moves it, files included, when a worker is
  drained. The hub makes each student's folder on the export before the first start.

Students' services use DNS round-robin endpoints, not a virtual IP: that needs no IPVS
in the nodes' kernels, and the hub reaches each server by its service name.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

from docker.errors import NotFound
from docker.types import DriverConfig, Mount
from dockerspawner import SwarmSpawner
from traitlets import Unicode, default

from .labels import student_filter
from .spawner import HOME_DIR, ClassroomSpawner

WORKERS_ONLY = "node.role==worker"
# Where the hub mounts the NFS export (docker-stack.nfs.yml), to make students' folders.
NFS_HOMES_MOUNT = "/srv/aihub-homes"
NODE_STATE_KEY = "home_node"
# The uid of jovyan in the students' image: their folders on the export are theirs.
STUDENT_UID = 1000
# The students' image's CMD (singleuser/Dockerfile; a unit test holds the two together).
# DockerSpawner would read it from the image on the hub's engine, which on a Swarm need
# not hold the image: the workers pull it.
STUDENT_COMMAND = ["jupyterhub-singleuser"]
# Task states of a service that wants to run but is not placed on any node yet.
WAITING_STATES = {"new", "pending", "assigned"}


def student_image(settings: SimpleNamespace) -> str:
    """The students' image, from IMAGE_REGISTRY when one is named."""
    if settings.image_registry:
        return f"{settings.image_registry}/{settings.singleuser_image}"
    return settings.singleuser_image


def placement_constraints(home_node: str) -> list[str]:
    """Students' servers run on workers only; with a home on a node, on that node."""
    return [WORKERS_ONLY] + ([f"node.id=={home_node}"] if home_node else [])


def home_mount(volume: str, storage: str, nfs_server: str = "", nfs_path: str = "") -> Mount:
    """The student's home volume as a service mount, local to a node or on NFS."""
    driver = None
    if storage == "nfs":
        driver = DriverConfig("local", {
            "type": "nfs",
            "o": f"addr={nfs_server},rw,nfsvers=4,hard",
            "device": f":{nfs_path.rstrip('/')}/{volume}",
        })
    return Mount(target=HOME_DIR, source=volume, type="volume", driver_config=driver)


def node_unavailable(node: dict | None) -> str:
    """Why a student's home node cannot run their server, as one line; "" when it can."""
    if node is None:
        return ("The worker node that holds your files has left the swarm; "
                "ask your admin to bring it back or restore your files.")
    name = node.get("Description", {}).get("Hostname") or node.get("ID", "?")
    availability = node.get("Spec", {}).get("Availability", "active")
    state = node.get("Status", {}).get("State", "ready")
    if availability != "active":
        availability = {"drain": "drained", "pause": "paused"}.get(availability, availability)
        return (f"Your files are on worker node {name}, which is {availability} (taking no servers); "
                f"ask your admin to make it active again: docker node update --availability active {name}")
    if state != "ready":
        return (f"Your files are on worker node {name}, which is {state}; "
                f"your server can start once that machine is back.")
    return ""


def least_busy_worker(nodes: list[dict], student_tasks: list[dict]) -> str:
    """The id of the active, ready worker running the fewest students' servers."""
    workers = [node for node in nodes if node.get("Spec", {}).get("Role") == "worker"
               and not node_unavailable(node)]
    if not workers:
        raise RuntimeError("No worker node is available for a new server; ask your admin to add or "
                           "activate one (docker node ls).")
    load = {node["ID"]: 0 for node in workers}
    for task in student_tasks:
        if task.get("NodeID") in load:
            load[task["NodeID"]] += 1
    return min(workers, key=lambda node: (load[node["ID"]], node.get("Description", {}).get("Hostname", "")))["ID"]


def service_environment(service: dict) -> dict[str, str]:
    spec = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    return dict(variable.partition("=")[::2] for variable in spec.get("Env") or ())


class SwarmClassroomSpawner(ClassroomSpawner, SwarmSpawner):
    home_storage = Unicode("node", config=True, help="node or nfs: where students' home volumes live.")
    nfs_server = Unicode("", config=True, help="NFS server of the homes (home_storage nfs).")
    nfs_path = Unicode("", config=True, help="Exported folder holding one folder per student.")

    home_node = ""

    @default("cmd")
    def _image_command(self):
        return STUDENT_COMMAND

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.home_node = state.get(NODE_STATE_KEY, "")

    def get_state(self) -> dict:
        state = super().get_state()
        if self.home_node:
            state[NODE_STATE_KEY] = self.home_node
        return state

    # clear_state (after a server stops) keeps home_node: the files stay on that node.

    @property
    def pinned_to_node(self) -> bool:
        return self.home_storage == "node"

    @property
    def mounts(self):
        return [home_mount(volume, self.home_storage, self.nfs_server, self.nfs_path)
                for volume in self.volume_binds]

    async def create_object(self):
        if self.pinned_to_node and self.home_node:
            if reason := node_unavailable(await self._node(self.home_node)):
                raise RuntimeError(reason)
        elif self.pinned_to_node:
            # Chosen here, not by Swarm, so that the server is pinned from its first start:
            # Swarm would move an unpinned one, without its files, when its node drains.
            self.home_node = least_busy_worker(await self.docker("nodes"), await self._student_tasks())
        if self.home_storage == "nfs":
            for volume in self.volume_binds:
                self._make_nfs_home(volume)
        # A service names all its networks and its placement when it is made (a
        # container joins extra networks after; hence SwarmSpawner's create_object).
        self.extra_task_spec = {**self.extra_task_spec,
                                "networks": [self.network_name, *self.networks_to_join()]}
        self.extra_placement_spec = {**self.extra_placement_spec,
                                     "constraints": placement_constraints(self.home_node if self.pinned_to_node else "")}
        return await SwarmSpawner.create_object(self)

    async def poll(self):
        status = await super().poll()
        if status is None and self.pinned_to_node and self.home_node:
            # Swarm keeps a pinned server "pending" forever when its node is drained or
            # down: for the hub and the student that server has stopped. JupyterHub does
            # not stop a server that poll reports stopped, so its service goes here, or
            # it would start again behind the hub's back when the node returns.
            task = await self.get_task()
            if task and task["Status"]["State"] in WAITING_STATES:
                if reason := node_unavailable(await self._node(self.home_node)):
                    await self.remove_object()
                    return reason
        return status

    async def _container_token(self) -> str:
        return service_environment(await self.get_object() or {}).get("JUPYTERHUB_API_TOKEN", "")

    async def _student_tasks(self) -> list[dict]:
        services = await self.docker("services", filters=student_filter(self.prefix))
        ids = {service["ID"] for service in services}
        tasks = await self.docker("tasks", filters={"desired-state": "running"})
        return [task for task in tasks if task.get("ServiceID") in ids]

    async def _node(self, node_id: str) -> dict | None:
        try:
            return await self.docker("inspect_node", node_id)
        except NotFound:
            return None

    def _make_nfs_home(self, volume: str) -> None:
        """The student's folder on the export (the hub mounts it), owned by them."""
        folder = os.path.join(NFS_HOMES_MOUNT, volume)
        if not os.path.isdir(NFS_HOMES_MOUNT):
            raise RuntimeError(f"HOME_STORAGE=nfs but the hub has no {NFS_HOMES_MOUNT}: deploy with "
                               f"-c docker-stack.yml -c docker-stack.nfs.yml")
        if not os.path.isdir(folder):
            os.mkdir(folder)
            os.chown(folder, STUDENT_UID, STUDENT_UID)


def spawner_class(settings: SimpleNamespace) -> type[ClassroomSpawner]:
    """SPAWNER_MODE: containers on this machine's engine, or services on a Swarm."""
    return SwarmClassroomSpawner if settings.spawner_mode == "swarm" else ClassroomSpawner
