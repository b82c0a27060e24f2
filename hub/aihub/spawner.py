"""Students' servers for a class that arrives at once: DockerSpawner, queued and labelled.

Thirty students pressing "Start" in the same minute on a small machine is the normal
case, not the exception. Started all at once, thirty JupyterLab servers share the CPU
and all finish late, some after the hub's start timeout. So servers start in turns:
at most `start_concurrency` at once, first come first served, each waiting student
seeing their place in line on the spawn page. The wait happens before JupyterHub
starts its start-timeout clock (in the pre-spawn hook), so the timeout still means
"this server did not start", never "this student waited their turn".

A turn ends when the new server answers HTTP, not when its container is created, so
the next servers start only once the CPU is free for them.

DockerSpawner runs every Docker API call on one shared thread, so thirty starts (and
thirty stops at the end of a lesson) queue behind each other's slowest call; this
spawner gives those calls a pool of threads.

Its state records a digest of the server's token, by which the AI gateway tells it
from a student's personal tokens (aihub.server_token); after a hub restart it takes the
token back from the container, so that stopping the server still revokes it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from dockerspawner import DockerSpawner
from escapism import unescape
from jupyterhub.utils import maybe_future, wait_for_http_server
from tornado.web import HTTPError
from traitlets import Dict, Integer, List, Unicode, default

from .server_token import RecordsServerToken


# A student's home folder is a named volume that outlives their containers. DockerSpawner
# renders {username} escaped for Docker (li-lei: li-2dlei), so this template, rendered by
# home_volume, is the one way to name a student's volume.
HOME_VOLUME = "{prefix}-user-{username}"
HOME_DIR = "/home/jovyan"


def home_volume(prefix: str, username: str) -> str:
    """The volume holding `username`'s home folder in the stack named `prefix`."""
    return HOME_VOLUME.format(prefix=prefix, username=DockerSpawner._escape(username))


def home_volume_prefix(prefix: str) -> str:
    """What the names of every student volume of the stack `prefix` begin with."""
    return HOME_VOLUME.format(prefix=prefix, username="")


def volume_owner(prefix: str, volume: str) -> str:
    """The user name whose home_volume is `volume`."""
    return unescape(volume[len(home_volume_prefix(prefix)):], escape_char="-")


class StartQueue:
    """First come, first served: at most `slots` holders at once, the rest wait in line."""

    def __init__(self, slots: int):
        self.slots = slots
        self.holders = 0
        self._waiting: OrderedDict[str, asyncio.Future] = OrderedDict()

    def ahead_of(self, name: str) -> int | None:
        """How many wait in line before `name`; None when `name` is not waiting."""
        for position, waiting in enumerate(self._waiting):
            if waiting == name:
                return position
        return None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def wait_turn(self, name: str) -> None:
        if self.holders < self.slots and not self._waiting:
            self.holders += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting[name] = turn
        try:
            await turn
        except asyncio.CancelledError:
            if self._waiting.get(name) is turn:
                del self._waiting[name]
            elif turn.done() and not turn.cancelled():
                self.done()  # handed a turn just as we gave up: pass it on
            raise

    def done(self) -> None:
        """A holder is finished: hand its slot to the first in line."""
        while self._waiting:
            _, turn = self._waiting.popitem(last=False)
            if not turn.done():
                turn.set_result(None)
                return
        self.holders -= 1


class ClassroomSpawner(RecordsServerToken, DockerSpawner):
    start_concurrency = Integer(
        4, config=True,
        help="How many servers start at once; the others wait their turn, in order.")
    docker_threads = Integer(
        16, config=True, help="Docker API calls made in parallel (starts, stops, polls).")
    environment_without_ai = Dict(
        config=True,
        help="The environment of a server started with the user option {'ai': false}.")
    extra_networks = List(
        Unicode(), config=True,
        help="Docker networks each container joins besides network_name (not a server "
             "started with {'ai': false}).")

    _queue: StartQueue | None = None
    _executor_pool: ThreadPoolExecutor | None = None
    _holds_turn = False

    @property
    def queue(self) -> StartQueue:
        cls = ClassroomSpawner
        if cls._queue is None:
            cls._queue = StartQueue(self.start_concurrency)
        return cls._queue

    @property
    def executor(self) -> ThreadPoolExecutor:
        cls = ClassroomSpawner
        if cls._executor_pool is None:
            cls._executor_pool = ThreadPoolExecutor(self.docker_threads, thread_name_prefix="docker")
        return cls._executor_pool

    async def run_pre_spawn_hook(self):
        await maybe_future(super().run_pre_spawn_hook())
        await self.queue.wait_turn(self._log_name)
        self._holds_turn = True

    async def start(self):
        try:
            ip, port = await super().start()
            # Hold the turn until the server answers: its start-up is what uses the CPU.
            url = f"http://{ip}:{port}{self.server.base_url if self.server else '/'}"
            await wait_for_http_server(url, timeout=self.http_timeout)
            return ip, port
        finally:
            self._end_turn()

    def _end_turn(self) -> None:
        if self._holds_turn:
            self._holds_turn = False
            self.queue.done()

    async def poll(self):
        status = await super().poll()
        if status is None and not self.api_token:
            # A server that outlived a hub restart: JupyterHub does not restore its token,
            # and would then leave it valid when the server stops. Its container has it.
            self.api_token = await self._container_token()
        return status

    async def _container_token(self) -> str:
        container = await self.get_object() or {}
        for variable in (container.get("Config") or {}).get("Env") or ():
            name, _, value = variable.partition("=")
            if name == "JUPYTERHUB_API_TOKEN":
                return value
        return ""

    async def progress(self):
        queue = self.queue
        while (ahead := queue.ahead_of(self._log_name)) is not None:
            starting = queue.holders
            yield {"progress": 5, "message": (
                f"Waiting for a free start slot: {ahead} ahead of you in line, "
                f"{starting} server{'s' if starting != 1 else ''} starting now")}
            await asyncio.sleep(1)
        yield {"progress": 30, "message": "Starting your server..."}

    def networks_to_join(self) -> list[str]:
        """The extra networks of this server (none for a server started without AI)."""
        return [] if self.user_options.get("ai") is False else list(self.extra_networks)

    async def create_object(self):
        # Docker creates a container on one network; the others are joined before it starts.
        created = await super().create_object()
        for network in self.networks_to_join():
            await self.docker("connect_container_to_network", created["Id"], network)
        return created

    @default("apply_user_options")
    def _accept_ai_option(self):
        def check(spawner, options):
            unknown = set(options) - {"ai"}
            if unknown or not isinstance(options.get("ai", False), bool):
                raise HTTPError(400, "The only server option is 'ai': true or false")
        return check

    def get_env(self):
        env = super().get_env()
        # A server may be started without AI (the rehearsal's comparison, a student's
        # own choice); never the other way round: AI_ENABLED=false for everyone wins.
        if self.user_options.get("ai") is False:
            for name in self.environment:
                env.pop(name, None)
            env.update(self.environment_without_ai)
        return env

