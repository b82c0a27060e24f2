"""The admin's class tools talking to the hub, from inside the hub's container.

They use the `class-tools` service token (aihub.services) and reach the hub's REST API
on its own port, and students' servers through the hub's proxy, exactly where a
browser's requests go. Everything is asynchronous, so thirty students' servers are
started, watched and used at once, as thirty browsers would.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from .progress import Progress
from .services import HUB_API_PORT, PROXY_PORT

HUB_API = f"http://127.0.0.1:{HUB_API_PORT}/hub/api"
PROXY = f"http://127.0.0.1:{PROXY_PORT}"


class HubError(Exception):
    """The hub refused or failed a request; str() is one line."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class SpawnResult:
    name: str
    seconds: float
    error: str | None = None


@dataclass
class CellResult:
    name: str
    seconds: float
    output: str
    error: str | None = None


class EventStream:
    """The JSON events of a server-sent event stream (the hub's spawn progress), fed
    chunk by chunk as they arrive; an event may arrive split over chunks."""

    def __init__(self):
        self.pending = bytearray()

    def feed(self, chunk: bytes) -> list[dict]:
        self.pending.extend(chunk)
        *lines, rest = self.pending.split(b"\n")
        self.pending[:] = rest
        return [json.loads(line[5:]) for line in lines if line.startswith(b"data:")]


class HubClient:
    def __init__(self, token: str, hub_api: str = HUB_API, proxy: str = PROXY):
        self.token = token
        self.hub_api = hub_api
        self.proxy = proxy
        # One connection per student at once, as their browsers would have.
        AsyncHTTPClient.configure(None, max_clients=256)
        self.http = AsyncHTTPClient()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    async def request(self, method: str, url: str, body=None, timeout: float = 120, ok=(200, 201, 202, 204)):
        encoded = None if body is None else json.dumps(body)
        if encoded is None and method in ("POST", "PUT", "PATCH"):
            encoded = ""
        try:
            response = await self.http.fetch(HTTPRequest(
                url, method=method, body=encoded, headers=self._headers(),
                request_timeout=timeout, allow_nonstandard_methods=True))
        except HTTPClientError as error:
            if error.code in ok:
                return None
            detail = ""
            if error.response is not None and error.response.body:
                try:
                    detail = json.loads(error.response.body).get("message", "")
                except ValueError:
                    detail = error.response.body[:200].decode(errors="replace")
            raise HubError(f"{method} {url.split('/api/', 1)[-1]}: {error.code} {detail}".strip(), error.code) from None
        if response.body and response.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(response.body)
        return None

    async def api(self, method: str, path: str, body=None, **kwargs):
        return await self.request(method, self.hub_api + path, body, **kwargs)

    # -- accounts and groups --------------------------------------------------------

    async def users(self) -> list[dict]:
        return await self.api("GET", "/users?limit=10000") or []

    async def found(self, path: str) -> dict | None:
        """GET `path` of the hub's API; None where there is no such thing."""
        try:
            return await self.api("GET", path)
        except HubError as error:
            if error.status == 404:
                return None
            raise

    async def user(self, name: str) -> dict | None:
        return await self.found(f"/users/{quote(name)}")

    async def create_users(self, names: list[str]) -> None:
        await self.api("POST", "/users", {"usernames": names})

    async def delete_user(self, name: str) -> None:
        await self.api("DELETE", f"/users/{quote(name)}", timeout=300, ok=(204, 404))

    async def group(self, name: str) -> dict | None:
        return await self.found(f"/groups/{quote(name)}")

    async def groups(self) -> list[dict]:
        return await self.api("GET", "/groups?limit=10000") or []

    # -- servers --------------------------------------------------------------------

    async def start_and_watch(self, name: str, options: dict | None = None, timeout: float = 600,
                              on_event=None) -> SpawnResult:
        """Start `name`'s server and follow its progress events until ready, as the spawn
        page does; return the time from the request to ready, or the failure's reason."""
        started = time.monotonic()
        try:
            await self.api("POST", f"/users/{quote(name)}/server", options or {})
            outcome: dict = {}
            stream = EventStream()

            def on_chunk(chunk: bytes) -> None:
                for event in stream.feed(chunk):
                    if on_event:
                        on_event(name, event)
                    if event.get("ready") or event.get("failed"):
                        outcome.update(event)

            url = f"{self.hub_api}/users/{quote(name)}/server/progress"
            # raise_error=False: a stream cut short (Ctrl-C) must not log a stray error.
            await self.http.fetch(HTTPRequest(url, headers=self._headers(), streaming_callback=on_chunk,
                                              request_timeout=timeout), raise_error=False)
            if not outcome:
                # The stream ends at once if the server was ready before we asked.
                model = await self.user(name)
                outcome["ready"] = bool(model and model.get("servers", {}).get("", {}).get("ready"))
            if outcome.get("failed") or not outcome.get("ready"):
                return SpawnResult(name, time.monotonic() - started, outcome.get("message") or "never became ready")
            return SpawnResult(name, time.monotonic() - started)
        except HubError as error:
            return SpawnResult(name, time.monotonic() - started, str(error))
        except Exception as error:  # a timeout or a dropped connection: a failure to report
            return SpawnResult(name, time.monotonic() - started, f"{type(error).__name__}: {error}")

    async def start_many(self, names: list[str], options: dict | None = None,
                         what: str = "starting servers", when_ready=None) -> list[SpawnResult]:
        """Start every server at once, as that many students pressing Start, showing
        progress; `when_ready(name)` runs for each server as soon as it is ready."""
        progress = Progress(len(names), what)

        async def one(name: str) -> SpawnResult:
            spawn = await self.start_and_watch(name, options, on_event=progress.event)
            progress.done(name, spawn.error is None)
            if when_ready and not spawn.error:
                await when_ready(name)
            return spawn
        spawns = list(await asyncio.gather(*(one(name) for name in names)))
        progress.show(final=True)
        return spawns

    async def stop_many(self, names: list[str]) -> None:
        await asyncio.gather(*(self.stop_server(name) for name in names))

    async def stop_server(self, name: str, timeout: float = 300) -> None:
        """Stop `name`'s server, a start still in progress included, and wait until it is
        stopped."""
        deadline = time.monotonic() + timeout
        await self.api("DELETE", f"/users/{quote(name)}/server", timeout=timeout, ok=(202, 204, 400, 404))
        while True:
            model = await self.user(name)
            if not model or not model.get("servers"):
                return
            if time.monotonic() > deadline:
                raise HubError(f"the server of {name} did not stop in {timeout:.0f} s")
            await asyncio.sleep(1)

    # -- inside a student's server --------------------------------------------------

    def _server(self, name: str) -> str:
        return f"{self.proxy}/user/{quote(name)}"

    async def open_lab(self, name: str, ai: bool = True) -> float:
        """What a browser asks for on landing in JupyterLab: the page, and the chat
        panel's settings; return the seconds it took."""
        started = time.monotonic()
        await self.request("GET", f"{self._server(name)}/lab")
        if ai:
            await self.request("GET", f"{self._server(name)}/api/ai/config")
        return time.monotonic() - started

    async def start_kernel(self, name: str) -> str:
        kernel = await self.request("POST", f"{self._server(name)}/api/kernels", {"name": "python3"})
        return kernel["id"]

    async def run_cell(self, name: str, kernel_id: str, code: str, timeout: float = 300) -> CellResult:
        """Run `code` in a kernel over its websocket, as a notebook does; time send to reply."""
        url = f"{self._server(name)}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        request = HTTPRequest(url.replace("http", "ws", 1), headers=self._headers(), request_timeout=60)
        msg_id = uuid.uuid4().hex
        connection = await websocket_connect(request)
        started = time.monotonic()
        output, status, error = [], None, None
        try:
            connection.write_message(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": uuid.uuid4().hex,
                           "username": name, "version": "5.3"},
                "parent_header": {}, "metadata": {}, "channel": "shell",
                "content": {"code": code, "silent": False, "store_history": True,
                            "user_expressions": {}, "allow_stdin": False},
            }))
            deadline = started + timeout
            idle = False
            while not (status and idle):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no answer in {timeout:.0f} s")
                raw = await asyncio.wait_for(connection.read_message(), remaining)
                if raw is None:
                    raise ConnectionError("the kernel's websocket closed")
                message = json.loads(raw)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    output.append(content["text"])
                    if content.get("name") == "stderr":
                        error = content["text"].strip().splitlines()[-1] if content["text"].strip() else error
                elif kind in ("execute_result", "display_data"):
                    output.append(content["data"].get("text/markdown") or content["data"].get("text/plain", ""))
                elif kind == "error":
                    error = f"{content['ename']}: {content['evalue']}"
                elif kind == "execute_reply":
                    status = content["status"]
                elif kind == "status":
                    idle = content["execution_state"] == "idle"
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"
        finally:
            connection.close()
        if status != "ok" and not error:
            error = f"cell ended with status {status}"
        return CellResult(name, time.monotonic() - started, "".join(output), error)

    async def metrics(self) -> str:
        response = await self.http.fetch(HTTPRequest(self.hub_api.rsplit("/api", 1)[0] + "/metrics",
                                                     headers=self._headers()))
        return response.body.decode()

