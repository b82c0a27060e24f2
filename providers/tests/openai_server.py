"""A small OpenAI-compatible server on 127.0.0.1 for the tests.

It serves GET <prefix>/v1/models and POST <prefix>/v1/chat/completions (plain JSON or
SSE streaming, with usage) under three prefixes ("", /first, /second), so a test can
tell base URLs apart; any other path gets a plain-text 404, like a wrong base URL.
Its answer is computed from the request, never canned:

    "<model>: <last user message reversed>"

Token usage is counted the same way: prompt tokens = words in all messages,
completion tokens = words in the answer. Every request is recorded (path, the
Authorization header, the JSON body) in `server.state.requests`.

Switches (set `server.state.mode`): "401", "403", "404" (model not found), "400-model"
(DeepSeek's way of saying it), "429", "500", "502", "hang" (never answers),
"hang-mid-stream" (sends one chunk, then nothing), "gateway-429" (the bundle's AI
gateway's own budget answer: X-AI-Gateway-Error: 1, x-should-retry: false),
"usage-every-chunk" (running usage in every streamed chunk, as some vendors do),
"error-mid-stream" (one chunk, then an {"error": ...} event). A model id not in `state.models`
gets a 404 model_not_found, as the real APIs do; `state.models_status` makes
GET /models fail; `state.keys` makes any other key a 401. 429 and 5xx answers carry
`retry-after-ms: 10`, so the client's one retry is quick. `closed_port()` gives a
port nothing listens on.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

HANG_SECONDS = 15  # a hanging request gives up after this, or when the server stops
CHUNK = 4  # characters per streamed chunk
# The API lives under /v1, /first/v1 and /second/v1; any other path is a 404.
PATH = re.compile(r"^(?P<prefix>/first|/second|)/v1/(?P<what>models|chat/completions)$")


@dataclass
class Request:
    method: str
    path: str
    authorization: Optional[str]
    body: Optional[dict]


@dataclass
class ServerState:
    models: list = field(default_factory=list)
    mode: Optional[str] = None
    models_status: int = 200
    keys: Optional[set] = None  # when set, any other key gets a 401
    requests: list = field(default_factory=list)


def answer_for(model: str, messages: list) -> str:
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    content = last_user.get("content", "")
    if isinstance(content, list):  # content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return f"{model}: {content[::-1]}"


def count_words(messages: list) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in messages)


class Handler(BaseHTTPRequestHandler):
    server: "OpenAIServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output clean
        pass

    # -- plumbing --

    def _send_json(self, status: int, payload: dict, headers: Optional[dict] = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, code: str, headers: Optional[dict] = None):
        self._send_json(
            status,
            {"error": {"message": message, "type": "invalid_request_error", "code": code}},
            headers,
        )

    def _hang(self):
        self.server.stopping.wait(HANG_SECONDS)

    def _record(self, body: Optional[dict]) -> None:
        self.server.state.requests.append(
            Request(self.command, self.path, self.headers.get("Authorization"), body)
        )

    # -- endpoints --

    def do_GET(self):
        match = PATH.match(self.path)
        self._record(None)
        if not match or match["what"] != "models":
            return self._error(404, f"no route {self.path}", "not_found")
        state = self.server.state
        if state.models_status != 200:
            return self._error(state.models_status, "model list unavailable", "unavailable")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in state.models]
        self._send_json(200, {"object": "list", "data": data})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            body = None
        self._record(body)
        match = PATH.match(self.path)
        if not match or match["what"] != "chat/completions":
            # like a web server in front of the API: plain text, no mention of models
            data = b"404 page not found"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        state = self.server.state
        mode = state.mode
        model = (body or {}).get("model", "")
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        quick_retry = {"retry-after-ms": "10"}

        if mode == "hang":
            return self._hang()
        if state.keys is not None and token not in state.keys:
            mode = "401"
        if mode in ("401", "403"):
            return self._error(
                int(mode), f"Incorrect API key provided: {token}. Bearer {token}", "invalid_api_key"
            )
        if mode == "429":
            return self._error(
                429,
                f"Quota exceeded for key {token} (also sk-live0123456789abcdef and "
                f"nvapi-ABCDEF0123456789); upgrade your plan",
                "rate_limit_exceeded",
                quick_retry,
            )
        if mode == "gateway-429":
            return self._error(
                429, "daily AI budget of 1000 tokens used; resets at 00:00 UTC",
                "daily_budget_exceeded",
                {"X-AI-Gateway-Error": "1", "x-should-retry": "false", "Retry-After": "5"},
            )
        if mode in ("500", "502"):
            return self._error(int(mode), "upstream exploded", "server_error", quick_retry)
        if mode == "400-model":
            return self._error(400, "Model Not Exist", "invalid_request_error")
        if mode == "404" or model not in state.models:
            return self._error(404, f"The model `{model}` does not exist", "model_not_found")

        messages = body.get("messages", [])
        answer = answer_for(model, messages)
        usage = {
            "prompt_tokens": count_words(messages),
            "completion_tokens": len(answer.split()),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage")
            return self._stream(model, answer, usage if include_usage else None, mode)
        self._send_json(
            200,
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
            },
        )

    def _stream(self, model: str, answer: str, usage: Optional[dict], mode: Optional[str]):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(choices: list, extra: Optional[dict] = None):
            chunk = {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": choices,
                **(extra or {}),
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        pieces = [answer[i : i + CHUNK] for i in range(0, len(answer), CHUNK)]
        for n, piece in enumerate(pieces):
            delta = {"content": piece, **({"role": "assistant"} if n == 0 else {})}
            running = None
            if mode == "usage-every-chunk" and usage:
                so_far = len("".join(pieces[: n + 1]).split())
                running = {"usage": {**usage, "completion_tokens": so_far,
                                     "total_tokens": usage["prompt_tokens"] + so_far}}
            event([{"index": 0, "delta": delta, "finish_reason": None}], running)
            if mode == "hang-mid-stream":
                return self._hang()
            if mode == "error-mid-stream":
                self.wfile.write(b'data: {"error": {"message": "upstream overloaded", "code": 503}}\n\n')
                self.wfile.flush()
                return
        event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if usage:
            event([], {"usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class OpenAIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, models: list):
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = ServerState(models=list(models))
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "OpenAIServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

    def handle_error(self, request, client_address) -> None:
        # A client that gave up (a timeout test) resets its connection: not news.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def reset(self, models: list) -> None:
        self.state = ServerState(models=list(models))


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
