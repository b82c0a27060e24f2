"""A real JupyterHub for the gateway's tests: `jupyterhub -f hub_config.py` in a tmp dir.

On loopback, sqlite, DummyAuthenticator (any password), no HTTP proxy (the tests call
the hub's own port, and the gateway's port where a proxy would forward /services/...).
It registers the gateway as the bundle will, with the same scopes:

  - the service `ai-gateway` with a known token and OAuth without a confirmation page;
  - the `user` role with `access:services!service=ai-gateway`, and the gateway's role;
  - Spawner.server_token_scopes with that scope, the lines jupyterhub_config.py needs.

The spawner starts no notebook: it answers HTTP on a port and writes the token the hub
made for the server (what a student's container gets as JUPYTERHUB_API_TOKEN) to
$GATEWAY_TEST_TOKENS/<user>, so a test can use a real server token; like the bundle's
spawner, it records that token's digest in its state (aihub.server_token).

Environment: HUB_PORT, GATEWAY_URL, GATEWAY_API_TOKEN, TEST_ADMIN_TOKEN, GATEWAY_TEST_TOKENS.
"""

import asyncio
import os
from pathlib import Path

from jupyterhub.proxy import Proxy
from jupyterhub.spawner import Spawner

from aihub.gateway.config import ACCESS_SCOPE as SCOPE
from aihub.gateway.config import SERVICE_NAME
from aihub.server_token import RecordsServerToken
from aihub.services import GATEWAY_SCOPES


class NoProxy(Proxy):
    """No configurable-http-proxy: nothing in these tests goes through it."""

    should_start = False

    async def add_route(self, routespec, target, data):
        pass

    async def delete_route(self, routespec):
        pass

    async def get_all_routes(self):
        return {}


class TokenSpawner(RecordsServerToken, Spawner):
    """A 'server' that is a tiny HTTP responder; its hub token goes to a file, and its
    digest to the state, as the bundle's spawner records it."""

    _responder = None

    async def start(self):
        async def answer(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
            writer.close()

        self._responder = await asyncio.start_server(answer, "127.0.0.1", 0)
        folder = Path(os.environ["GATEWAY_TEST_TOKENS"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.user.name).write_text(self.api_token)
        return "127.0.0.1", self._responder.sockets[0].getsockname()[1]

    async def poll(self):
        return None if self._responder is not None else 0

    async def stop(self, now=False):
        if self._responder is not None:
            self._responder.close()
            self._responder = None


c = get_config()  # noqa: F821
c.JupyterHub.proxy_class = NoProxy
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{os.environ['HUB_PORT']}"
c.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
# test_admin.py: an admin whose name is markup, to show the gateway's page escapes it.
c.Authenticator.admin_users = {"teacher", '<script>alert("admin")'}
c.JupyterHub.spawner_class = TokenSpawner
c.Spawner.http_timeout = 10

# The lines the bundle's jupyterhub_config.py adds for the gateway:
c.JupyterHub.services = [
    {
        "name": SERVICE_NAME,
        "url": os.environ["GATEWAY_URL"],
        "api_token": os.environ["GATEWAY_API_TOKEN"],
        "oauth_no_confirm": True,
        "display": False,
    },
    # Only for the tests: creates users and tokens through the REST API.
    {"name": "test-admin", "api_token": os.environ["TEST_ADMIN_TOKEN"]},
]
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", SCOPE]},
    {"name": SERVICE_NAME, "scopes": GATEWAY_SCOPES, "services": [SERVICE_NAME]},
    {"name": "test-admin", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["test-admin"]},
]
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", SCOPE]
