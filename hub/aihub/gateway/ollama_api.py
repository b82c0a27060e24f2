"""Ollama's own API through the gateway, for `import ollama` and `requests` code.

    POST /ollama/api/chat          NDJSON stream (Ollama's default) or one JSON object
    POST /ollama/api/generate      the same
    POST /ollama/api/embed         metered like the above
    POST /ollama/api/embeddings    (Ollama's older single-vector API)
    GET  /ollama/, /ollama/api/tags, /ollama/api/ps, /ollama/api/version,
    POST /ollama/api/show          forwarded as they are, not metered (no tokens)
    /ollama/api/pull, push, create, copy, delete, blobs/...   403: models are the admin's

A student's container gets OLLAMA_HOST=http://gateway:8090/ollama and, as
OLLAMA_API_KEY, its server token; the official `ollama` client (0.6 and later) sends
that variable as `Authorization: Bearer <key>` by itself, so `ollama.chat(...)` works
unchanged, and `requests` code sends the same header.

Everything but the body's checks and the answer's format is the OpenAI routes' path
(api.Proxy, proxy.Exchange): the same token check, budget and concurrency admission,
ledger row, forwarding and scrubbing. Ollama reports usage on its answer's last line
(`prompt_eval_count`, `eval_count`); without them the text is estimated, as elsewhere.
Errors come in Ollama's shape, `{"error": "<one line>"}` (what the ollama client shows
in its ResponseError), with the gateway's `code` beside it.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any, Callable, Optional

import httpx

from . import api, payloads
from .config import GatewayConfig, Upstream
from .errors import GatewayError, clean
from .metering import Meter, answer_cap, chat_prompt_tokens, embedding_input_tokens, text_tokens
from .payloads import ProxyRequest, bad_request
from .proxy import Exchange
from .upstream import headers, transport_error, vendor_error

OLLAMA = "ollama"  # the provider id of the bundle's Ollama (aihub_providers.vendors)
CHAT = "api/chat"
GENERATE = "api/generate"
EMBED = "api/embed"
EMBEDDINGS = "api/embeddings"
STREAMED = (CHAT, GENERATE)
NDJSON = "application/x-ndjson"
INFO_TIMEOUT = 30.0  # seconds for a listing or a model's details
MANAGED = (
    "models are managed by the hub's admin (OLLAMA_PULL_MODELS in .env): "
    "students can list, show and use them, not pull, create, copy or delete them"
)


def native_upstream(config: GatewayConfig) -> Upstream:
    """The Ollama upstream at its own API's base (the OpenAI one is under /v1)."""
    upstream = config.upstreams.get(OLLAMA)
    if upstream is None:
        raise payloads.unknown_provider(OLLAMA, config.upstreams, config.unconfigured)
    return replace(upstream, api_base=upstream.api_base.removesuffix(upstream.vendor.api_path))


def _text(body: dict, field: str) -> str:
    value = body.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise bad_request(f"'{field}' must be a string", "invalid_" + field)
    return value


def prepare(raw: bytes, endpoint: str, upstream: Upstream, default_max_tokens: int) -> ProxyRequest:
    """A native request, checked as far as metering needs; Ollama judges the rest.

    An answer's length is options.num_predict (-1 and -2, Ollama's "no limit" and
    "fill the context", count as unset): without one the gateway sets its default, so
    the reservation admission makes for the answer is one Ollama keeps to.
    """
    body = payloads.decode(raw)
    model = payloads._check_model(body)
    stream = False
    if endpoint in STREAMED:
        stream = body.get("stream")
        stream = True if stream is None else stream  # Ollama streams unless told not to
        if not isinstance(stream, bool):
            raise bad_request("'stream' must be true or false", "invalid_stream")
    if endpoint == CHAT:
        messages = body.get("messages")
        messages = [] if messages is None else messages  # none: Ollama loads the model
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise bad_request("'messages' must be a list of messages like {\"role\": \"user\", \"content\": \"...\"}",
                              "invalid_messages")
        estimate = chat_prompt_tokens(messages)
    elif endpoint == GENERATE:
        estimate = math.ceil(text_tokens(_text(body, "prompt")) + text_tokens(_text(body, "system")))
    elif endpoint == EMBED:
        value = body.get("input")
        value = [] if value is None else value
        if not isinstance(value, (str, list)):
            raise bad_request("'input' must be a string or a list of strings", "invalid_input")
        estimate = embedding_input_tokens(value)
    else:
        estimate = math.ceil(text_tokens(_text(body, "prompt")))
    completion_cap = 0
    if endpoint in STREAMED:
        completion_cap, body = answer_cap_of(body, default_max_tokens)
        raw = json.dumps(body, separators=(",", ":")).encode() if body is not None else raw
    return ProxyRequest(endpoint=endpoint, upstream=upstream, model=model, stream=stream,
                        client_wants_usage=False, body=raw, prompt_estimate=estimate,
                        completion_cap=completion_cap)


def answer_cap_of(body: dict, default_max_tokens: int) -> tuple[int, Optional[dict]]:
    """(the answer's cap, the body with the default cap set, or None if unchanged)."""
    options = body.get("options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise bad_request("'options' must be an object", "invalid_options")
    limit = options.get("num_predict")
    if limit in (-1, -2) and not isinstance(limit, bool):
        limit = None
    try:
        cap, uses_default = answer_cap([limit], None, default_max_tokens)
    except ValueError as error:
        raise bad_request(f"'options.num_predict' {error}", "invalid_max_tokens") from None
    if not uses_default:
        return cap, None
    return cap, {**body, "options": {**options, "num_predict": default_max_tokens}}


def saw_native(meter: Meter, answer: Any) -> None:
    """One object of Ollama's answer: its text, and the counts its last one carries."""
    if not isinstance(answer, dict):
        return
    message = answer.get("message")
    if isinstance(message, dict):
        meter.saw_text(message.get("content"))
        meter.saw_text(message.get("thinking"))
    meter.saw_text(answer.get("response"))
    meter.saw_text(answer.get("thinking"))
    if "prompt_eval_count" in answer or "eval_count" in answer:
        # Ollama leaves prompt_eval_count out when the whole prompt was cached.
        meter.saw_usage({"prompt_tokens": answer.get("prompt_eval_count", meter.prompt_estimate),
                         "completion_tokens": answer.get("eval_count", 0)})


def error_line(message: str) -> bytes:
    return json.dumps({"error": message}, ensure_ascii=False).encode() + b"\n"


class LineStream:
    """Ollama's NDJSON stream, passed on line for line as it comes, read to meter it.

    The same interface as sse.EventStream: feed() returns every complete line at once
    (a trailing partial line waits for its rest), close() what is left. A line
    `{"error": ...}` (Ollama's failure after output started) is re-sent scrubbed.
    """

    def __init__(self, meter: Meter, *, clean: Callable[[str], str]):
        self.meter = meter
        self.clean = clean
        self.error: Optional[str] = None
        self._rest = b""

    def feed(self, piece: bytes) -> bytes:
        data = self._rest + piece if self._rest else piece
        end = data.rfind(b"\n") + 1
        self._rest = data[end:]
        return b"".join(self._pass(line) for line in data[:end].splitlines(keepends=True))

    def close(self) -> bytes:
        rest, self._rest = self._rest, b""
        return self._pass(rest) if rest.strip() else rest

    def _pass(self, line: bytes) -> bytes:
        try:
            answer = json.loads(line)
        except ValueError:
            return line  # not ours to judge: pass it on
        if isinstance(answer, dict) and answer.get("error"):
            error = answer["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            self.error = self.clean(str(message))
            return error_line(self.error)
        saw_native(self.meter, answer)
        return line


class NativeExchange(Exchange):
    STREAM_TYPE = NDJSON
    STREAM_HEADERS = {"Content-Type": NDJSON, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    def meter_answer(self, answer: object) -> None:
        saw_native(self.meter, answer)

    def stream_reader(self) -> LineStream:
        return LineStream(self.meter, clean=lambda text: clean(text, self.secrets))

    def error_event(self, error: dict) -> bytes:
        return error_line(error["message"])


class OllamaErrors:
    """Errors in Ollama's shape, for the ollama client's ResponseError."""

    def error_body(self, error: GatewayError) -> bytes:
        return json.dumps({"error": error.message, "code": error.code}, ensure_ascii=False).encode()


class NativeOllama(OllamaErrors, api.Proxy):
    """POST chat, generate, embed, embeddings: admitted, forwarded and recorded as api.Proxy."""

    exchange_class = NativeExchange

    def parse(self, provider: Optional[str]) -> ProxyRequest:
        config = self.gateway.config
        return prepare(bytes(self.body), self.endpoint, native_upstream(config), config.default_max_tokens)


class OllamaInfo(OllamaErrors, api.Authenticated):
    """What a client asks besides answers (model list, details, version): forwarded."""

    def initialize(self, gateway, endpoint: str = "") -> None:
        super().initialize(gateway)
        self.endpoint = endpoint

    async def get(self) -> None:
        await self.forward()

    async def post(self) -> None:
        await self.forward()

    async def forward(self) -> None:
        if self.refusal:
            return self.send_error_json(self.refusal)
        config = self.gateway.config
        try:
            upstream = native_upstream(config)
        except GatewayError as error:
            return self.send_error_json(error)
        try:
            response = await self.gateway.http.request(
                self.request.method, upstream.url(self.endpoint), content=self.request.body or None,
                headers=headers(upstream, stream=False), timeout=INFO_TIMEOUT)
        except httpx.HTTPError as error:
            return self.send_error_json(transport_error(upstream, error, INFO_TIMEOUT, config.secrets))
        if response.status_code >= 400:
            return self.send_error_json(vendor_error(upstream, response.status_code, response.content,
                                                     response.headers, config.secrets))
        self.set_status(response.status_code)
        self.set_header("Content-Type", response.headers.get("content-type", "application/json"))
        self.finish(response.content)


class ManagedByAdmin(OllamaErrors, api.JSONHandler):
    def prepare(self) -> None:
        self.send_error_json(GatewayError(403, MANAGED, "models_managed_by_admin"))


def routes() -> list[tuple[str, type, dict]]:
    """(path under the gateway's prefixes, handler, extra arguments), as app.Gateway takes them."""
    return [
        (r"ollama/?", OllamaInfo, {"endpoint": ""}),
        (r"ollama/api/tags", OllamaInfo, {"endpoint": "api/tags"}),
        (r"ollama/api/ps", OllamaInfo, {"endpoint": "api/ps"}),
        (r"ollama/api/version", OllamaInfo, {"endpoint": "api/version"}),
        (r"ollama/api/show", OllamaInfo, {"endpoint": "api/show"}),
        (r"ollama/api/chat", NativeOllama, {"endpoint": CHAT}),
        (r"ollama/api/generate", NativeOllama, {"endpoint": GENERATE}),
        (r"ollama/api/embed", NativeOllama, {"endpoint": EMBED}),
        (r"ollama/api/embeddings", NativeOllama, {"endpoint": EMBEDDINGS}),
        (r"ollama/api/(?:pull|push|create|copy|delete|blobs/.*)", ManagedByAdmin, {}),
    ]
