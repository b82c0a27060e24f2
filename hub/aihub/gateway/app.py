"""The gateway process: its parts, its routes, its start and its stop.

Every route is served twice: at the root, for students' containers calling
http://gateway:8090/... directly, and under /services/ai-gateway/, the path the hub's
proxy forwards unchanged (browsers reach the admin page there). The admin page and its
OAuth callback exist only under the prefix, where the hub's login cookie lives.
Besides the OpenAI-compatible API (api.py), /ollama/api/... serves Ollama's own
(ollama_api.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import Optional

import asyncpg
import httpx
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RedirectHandler

from . import admin, api, db, ollama_api
from .auth import make_hub_auth
from .config import PORT, SERVICE_PREFIX, GatewayConfig
from .ledger import Ledger
from .logs import hide_secrets
from .models import ModelCatalog
from .payloads import CHAT, EMBEDDINGS
from .quotas import Quotas
from .upstream import make_client

log = logging.getLogger("aihub.gateway")

PROVIDER = r"(?P<provider>[a-z0-9][a-z0-9-]*)"
MODEL_ID = r"(?P<model>.+)"
IDLE_CONNECTION_SECONDS = 300  # students' clients keep connections open between calls


def _log_request(handler) -> None:
    # The path without its query string: an OAuth callback's code never reaches a log.
    status = handler.get_status()
    level = logging.DEBUG if status < 400 else logging.INFO
    log.log(level, "%d %s %s %.1f ms", status, handler.request.method, handler.request.path,
            1000 * handler.request.request_time())


class Gateway:
    def __init__(self, config: GatewayConfig):
        self.config = config
        self.hub_auth = make_hub_auth(config)
        self.pool: Optional[asyncpg.Pool] = None
        self.ledger: Optional[Ledger] = None
        self.quotas: Optional[Quotas] = None
        self.http: Optional[httpx.AsyncClient] = None
        self.models: Optional[ModelCatalog] = None
        self.server: Optional[HTTPServer] = None
        self.port: Optional[int] = None

    def routes(self) -> list[tuple]:
        args = {"gateway": self}
        api_routes = [
            (r"health", api.Health, {}),
            (r"v1/models", api.Models, {}),
            (rf"v1/models/{MODEL_ID}", api.Models, {}),
            (r"v1/chat/completions", api.Proxy, {"endpoint": CHAT}),
            (r"v1/embeddings", api.Proxy, {"endpoint": EMBEDDINGS}),
            (rf"{PROVIDER}/v1/models", api.Models, {}),
            (rf"{PROVIDER}/v1/models/{MODEL_ID}", api.Models, {}),
            (rf"{PROVIDER}/v1/chat/completions", api.Proxy, {"endpoint": CHAT}),
            (rf"{PROVIDER}/v1/embeddings", api.Proxy, {"endpoint": EMBEDDINGS}),
            *ollama_api.routes(),
        ]
        routes = [
            (SERVICE_PREFIX.rstrip("/"), RedirectHandler, {"url": SERVICE_PREFIX}),
            (SERVICE_PREFIX, admin.UsagePage, args),
            (SERVICE_PREFIX + "usage.csv", admin.UsageCSV, args),
            (SERVICE_PREFIX + "budgets", admin.Budgets, args),
            (SERVICE_PREFIX + "oauth_callback", admin.OAuthCallback, args),
        ]
        for prefix in (SERVICE_PREFIX, "/"):
            for path, handler, extra in api_routes:
                routes.append((prefix + path, handler, dict(args, **extra)))
        return routes

    def application(self) -> Application:
        return Application(
            self.routes(),
            default_handler_class=api.NotFound,
            default_handler_args={"gateway": self},
            # Signs the admin's login cookie; derived from the service token so a restart
            # keeps admins logged in, and no new secret is needed.
            cookie_secret=hmac.new(self.config.api_token.encode(), b"ai-gateway cookies", hashlib.sha256).digest(),
            log_function=_log_request,
            xsrf_cookies=False,  # API calls carry tokens; the admin form checks XSRF itself
        )

    async def start(self, address: str = "0.0.0.0", port: int = PORT, *, db_wait: float = 60.0) -> int:
        hide_secrets(self.config.secrets)  # before the first request can be logged
        self.pool = await db.connect(self.config.database, wait=db_wait)
        await db.migrate(self.pool)
        self.ledger = Ledger(self.pool, self.config.database)
        await self.ledger.start()
        self.quotas = Quotas(self.ledger, self.config.daily_token_budget, self.config.max_concurrent_requests)
        self.http = make_client(self.config)
        self.models = ModelCatalog(self.http, self.config.upstreams)
        self.server = HTTPServer(self.application(), xheaders=True,
                                 idle_connection_timeout=IDLE_CONNECTION_SECONDS,
                                 body_timeout=self.config.request_timeout,
                                 max_body_size=self.config.max_request_size + api.DRAIN_LIMIT)
        sockets = bind_sockets(port, address)
        self.server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        log.info("AI gateway on %s:%d (instance %d); hub API %s; providers: %s", address, self.port,
                 self.ledger.instance_id, self.hub_auth.api_url, ", ".join(self.config.upstreams) or "none")
        return self.port

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking requests, let running ones end (up to `grace` s), then close."""
        if self.server is not None:
            self.server.stop()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + grace
            while self.quotas.requests_in_flight and loop.time() < deadline:
                await asyncio.sleep(0.1)
            try:
                await asyncio.wait_for(self.server.close_all_connections(), 1.0)
            except asyncio.TimeoutError:
                pass
        if self.http is not None:
            await self.http.aclose()
        if self.ledger is not None:
            await self.ledger.close()
        if self.pool is not None:
            try:
                await asyncio.wait_for(self.pool.close(), 5.0)
            except asyncio.TimeoutError:
                self.pool.terminate()
