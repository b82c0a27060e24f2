"""The OpenAI-compatible HTTP API, as tornado handlers.

    POST /<provider>/v1/chat/completions   model: the vendor's id
    POST /<provider>/v1/embeddings
    GET  /<provider>/v1/models[/<id>]
    POST /v1/chat/completions              model: provider:model
    POST /v1/embeddings
    GET  /v1/models[/<id>]                 every routable model as provider:model
    GET  /health                           200 while the database answers

Ollama's own API (/ollama/api/...) is ollama_api.py's, on the same Proxy path.

Order of checks for a POST, cheapest first, so a refused request costs nothing:
who is calling (prepare, before the body is read), the body's size (counted while it
arrives, never held beyond AI_MAX_REQUEST_SIZE), its JSON, the provider, then the
quotas. Every refusal is an OpenAI-format JSON error; nothing a client sends can
cause a 500.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Optional

import asyncpg
from tornado.iostream import StreamClosedError
from tornado.web import RequestHandler, stream_request_body

from . import payloads
from .auth import authenticate
from .errors import GATEWAY_HEADER, GatewayError, error_body
from .ledger import Outcome
from .metering import Meter
from .proxy import ClientGone, Exchange

if TYPE_CHECKING:
    from .app import Gateway

log = logging.getLogger("aihub.gateway")

# Bodies over the limit are still read (and dropped) up to this much more, so the client
# gets its 413 instead of a reset connection; beyond it the connection is closed.
DRAIN_LIMIT = 16 * 1024 * 1024
ENDPOINTS = ("POST /v1/chat/completions, POST /v1/embeddings, GET /v1/models (also under /<provider>/), "
             "and Ollama's API under /ollama/api/")


DATABASE_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
LEDGER_DOWN = GatewayError(503, "the AI gateway cannot reach its database; try again in a minute",
                           "ledger_unavailable", type="server_error")


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, f"the request is larger than the gateway accepts ({limit} bytes, "
                             "AI_MAX_REQUEST_SIZE); send less text", "request_too_large")


class JSONHandler(RequestHandler):
    """Every answer, error or not, is JSON."""

    gateway: "Gateway"

    def initialize(self, gateway: "Gateway") -> None:
        self.gateway = gateway

    def compute_etag(self) -> Optional[str]:
        return None

    def send_json(self, payload: object, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def send_error_json(self, error: GatewayError) -> None:
        self.clear()
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json")
        if error.own:
            self.set_header(GATEWAY_HEADER, "1")
        for name, value in error.headers.items():
            self.set_header(name, value)
        self.finish(self.error_body(error))

    def error_body(self, error: GatewayError) -> bytes:
        """An error in the API's own shape: OpenAI's here (ollama_api: Ollama's)."""
        return error.body()

    def write_error(self, status_code: int, **kwargs) -> None:
        # tornado's own refusals (405, malformed HTTP) and, never by design, a bug.
        if status_code >= 500:
            message, code = "the AI gateway failed unexpectedly; try again, and tell the admin if it repeats", "internal_error"
        else:
            message, code = f"{self._reason} ({status_code}); the gateway serves {ENDPOINTS}", "bad_request"
        self.set_header("Content-Type", "application/json")
        self.set_header(GATEWAY_HEADER, "1")
        self.finish(error_body(message, "invalid_request_error" if status_code < 500 else "server_error", code))


class NotFound(JSONHandler):
    def prepare(self) -> None:
        self.send_error_json(GatewayError(404, f"no such endpoint; the gateway serves {ENDPOINTS}",
                                          "unknown_endpoint"))


class Health(JSONHandler):
    async def get(self) -> None:
        try:
            await asyncio.wait_for(self.gateway.pool.fetchval("SELECT 1"), 3)
        except Exception as error:
            log.warning("health: database check failed: %s", type(error).__name__)
            return self.send_json({"status": "error", "error": "the database does not answer"}, 503)
        self.send_json({"status": "ok"})


class Authenticated(JSONHandler):
    """Finds the user in prepare(); a refusal is kept and sent once the body is drained."""

    username: Optional[str] = None
    refusal: Optional[GatewayError] = None

    async def prepare(self) -> None:
        self.arrived = time.perf_counter()
        if not self.gateway.config.ai_enabled:
            self.refusal = GatewayError(403, "AI is switched off on this hub (AI_ENABLED=false)", "ai_disabled")
            return
        try:
            self.username = await authenticate(self.gateway.hub_auth, self.request.headers.get("Authorization", ""))
        except GatewayError as error:
            self.refusal = error


class Models(Authenticated):
    async def get(self, provider: Optional[str] = None, model: Optional[str] = None) -> None:
        if self.refusal:
            return self.send_error_json(self.refusal)
        config, catalog = self.gateway.config, self.gateway.models
        if provider is None:
            entries = await catalog.everything()
        else:
            upstream = config.upstreams.get(provider)
            if upstream is None:
                return self.send_error_json(payloads.unknown_provider(provider, config.upstreams, config.unconfigured))
            entries = await catalog.of(upstream)
        if model is None:
            return self.send_json({"object": "list", "data": entries})
        for entry in entries:
            if entry["id"] == model:
                return self.send_json(entry)
        self.send_error_json(GatewayError(404, f"no model '{model}' listed; GET the models list for the ids",
                                          "model_not_found"))


@stream_request_body
class Proxy(Authenticated):
    """POST chat/completions and embeddings: checked, admitted, forwarded, recorded."""

    def initialize(self, gateway: "Gateway", endpoint: str = payloads.CHAT) -> None:
        super().initialize(gateway)
        self.endpoint = endpoint
        # Set here, not in prepare(): for a method it does not serve (TRACE, a lowercase
        # post) tornado answers 405 without prepare(), yet still calls on_connection_close.
        self.body = bytearray()
        self.too_large = False
        self.client_gone = False
        self.forwarding: Optional[asyncio.Future] = None

    async def prepare(self) -> None:
        limit = self.gateway.config.max_request_size
        connection = self.request.connection
        connection.set_max_body_size(limit + DRAIN_LIMIT)
        connection.set_body_timeout(self.gateway.config.request_timeout)
        length = self.request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > limit + DRAIN_LIMIT:
            return self.send_error_json(too_large(limit))  # not worth reading: answer, then close
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        if self.refusal or self.too_large:
            return  # drained, never kept
        if len(self.body) + len(chunk) > self.gateway.config.max_request_size:
            self.too_large, self.body = True, bytearray()
            return
        self.body += chunk

    async def post(self, provider: Optional[str] = None) -> None:
        gateway = self.gateway
        config = gateway.config
        if self.client_gone:
            return
        if self.refusal:
            return self.send_error_json(self.refusal)
        if self.too_large:
            return self.send_error_json(too_large(config.max_request_size))
        try:
            request = self.parse(provider)
        except GatewayError as error:
            return self.send_error_json(error)
        self.body = bytearray()
        meter = Meter(request.prompt_estimate, request.completion_cap)
        try:
            row_id = await gateway.quotas.admit(self.username, request, meter)
        except GatewayError as error:
            log.info("%s %s:%s refused: %s", self.username, request.upstream.id, request.model, error.code)
            return self.send_error_json(error)
        except DATABASE_ERRORS as error:
            # Unmetered calls are not made: without its ledger the gateway refuses.
            log.error("ledger unavailable: %s", type(error).__name__)
            return self.send_error_json(LEDGER_DOWN)

        exchange = self.exchange_class(request, meter, self, started=self.arrived, secrets=config.secrets,
                                       timeout=config.request_timeout)
        outcome: Optional[Outcome] = None
        try:
            self.forwarding = asyncio.ensure_future(exchange.run(gateway.http))
            outcome = await self.forwarding
        except asyncio.CancelledError:
            if not self.client_gone:
                raise  # the gateway is stopping
            outcome = exchange.disconnected()
        except Exception:
            outcome = exchange.outcome("error", 500, "used", "the gateway failed unexpectedly")
            raise
        finally:
            self.forwarding = None
            if outcome is None:
                outcome = exchange.outcome("interrupted", None, "used", "the gateway stopped")
            await gateway.quotas.settle(self.username, row_id, meter, outcome)
            log.info("%s %s:%s %s %s tokens=%d%s %d ms", self.username, request.upstream.id, request.model,
                     outcome.status, outcome.http_status, outcome.total_tokens,
                     " (estimated)" if outcome.estimated else "", outcome.latency_ms or 0)

    # What a subclass for another API (ollama_api.NativeOllama) changes: how a body is
    # read and routed, and how the answer is passed on.
    exchange_class = Exchange

    def parse(self, provider: Optional[str]) -> payloads.ProxyRequest:
        """The client's body, checked and routed; GatewayError for a client's mistake."""
        config = self.gateway.config
        return payloads.prepare(bytes(self.body), self.endpoint, provider, config.upstreams, config.unconfigured,
                                config.default_max_tokens)

    def on_connection_close(self) -> None:
        # The client hung up: stop waiting on the vendor now, not at its next token.
        super().on_connection_close()  # ends a body still being received
        self.client_gone = True
        if self.forwarding is not None and not self.forwarding.done():
            self.forwarding.cancel()

    # -- the Client interface of proxy.Exchange --

    def start(self, status: int, headers: dict[str, str]) -> None:
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)

    async def send(self, data: bytes) -> None:
        if self.client_gone:
            raise ClientGone()
        self.write(data)
        try:
            await self.flush()
        except StreamClosedError:
            raise ClientGone() from None

    def end(self, data: bytes = b"") -> None:
        if self.client_gone:
            raise ClientGone()
        try:
            self.finish(data)
        except StreamClosedError:
            raise ClientGone() from None

    def fail(self, error: GatewayError) -> None:
        if not self.client_gone:
            self.send_error_json(error)
