"""A stand-in for the Ollama server, for machines that cannot pull ollama/ollama.

Same contract as the real one where the bundle and its clients can tell: it listens on
OLLAMA_HOST (the image sets 0.0.0.0:11434), keeps models under OLLAMA_MODELS (default
~/.ollama/models, so /root/.ollama in the image, as Ollama) in Ollama's own layout, and
serves Ollama's HTTP API and its OpenAI-compatible one. Inference is real: llama.cpp
(the xllamacpp wheel) runs tiny random-weight models, so replies are gibberish but are
genuinely generated token by token. /api/pull copies models from a store baked into
the image (STORE), the way Ollama copies layers from its registry.

    ollama serve          the server (the image's default command)
    ollama list | ls      models pulled, as the real CLI prints them (asks the server)
    ollama pull NAME      pull through the server, printing progress
    ollama --version

A model whose template reads `.Think` (qwen3:0.6b in the store) thinks, as Ollama's
qwen3 and deepseek-r1 do: the first half of its answer's tokens are its reasoning.
Where it goes depends on the request, as with Ollama: `think: true` puts it in the
`thinking` field (/api/chat's message, /api/generate's answer), `reasoning_effort` in
/v1's `reasoning` field; without either it comes first in the text between `<think>`
and `</think>`; `think: false` or `reasoning_effort: "none"` turns it off.
"""

import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

# The production image's version: clients see the API of that release.
VERSION = "0.34.2"
STORE = Path(os.environ.get("OLLAMA_STANDIN_STORE", "/opt/ollama-standin/store"))
# Ollama generates until the model stops; random weights never stop, so replies are
# cut at this many tokens unless the request sets num_predict / max_tokens.
DEFAULT_NUM_PREDICT = int(os.environ.get("OLLAMA_STANDIN_NUM_PREDICT", "32"))
EMBED_MAX_BYTES = 2000  # an embedding's input is cut to this (see truncated())
# One thread decodes this tiny model fastest: more only wait on each other (measured
# on 2 cores: 2,600 tok/s with one, 130 to 1,700 with two).
THREADS = int(os.environ.get("OLLAMA_STANDIN_THREADS") or 1)
REGISTRY, NAMESPACE = "registry.ollama.ai", "library"
MODEL_MEDIA_TYPE = "application/vnd.ollama.image.model"
PULL_CHUNK = 64 * 1024
PULL_CHUNK_DELAY = 0.02  # so progress arrives over time, as from a network
HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?$")
NAME_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,79}$")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def models_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or "~/.ollama/models").expanduser()


def host_port() -> tuple[str, int]:
    """OLLAMA_HOST as Ollama reads it: host, host:port or a URL; 127.0.0.1:11434 by default."""
    value = os.environ.get("OLLAMA_HOST", "").strip() or "127.0.0.1"
    netloc = urlsplit(value if "://" in value else "http://" + value)
    return netloc.hostname or "127.0.0.1", netloc.port or 11434


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


# --- model names and the models directory --------------------------------------------

def parse_name(name: str) -> tuple:
    """[host/][namespace/]model[:tag] -> (host, namespace, model, tag), as Ollama parses it."""
    base, tag = name.strip(), "latest"
    if ":" in base.rsplit("/", 1)[-1]:  # a colon before the last slash is a host's port
        base, tag = base.rsplit(":", 1)
    parts = base.split("/")
    valid = (1 <= len(parts) <= 3 and all(NAME_PART.match(p) for p in parts[-2:])
             and (len(parts) < 3 or HOST.match(parts[0])) and TAG.match(tag))
    if not valid:
        raise ApiError(400, "invalid model name")
    return tuple([REGISTRY, NAMESPACE][: 3 - len(parts)] + parts + [tag])


def display_name(ref: tuple) -> str:
    """The short form Ollama shows: the default registry and namespace left out."""
    host, namespace, model, tag = ref
    if host == REGISTRY:
        return f"{model}:{tag}" if namespace == NAMESPACE else f"{namespace}/{model}:{tag}"
    return f"{host}/{namespace}/{model}:{tag}"


def blob_path(root: Path, digest: str) -> Path:
    return root / "blobs" / digest.replace(":", "-")


def manifest_path(root: Path, ref) -> Path:
    return root.joinpath("manifests", *ref)


class Model:
    """A pulled model: its manifest, config and GGUF file in the models directory."""

    def __init__(self, path: Path):
        root = models_dir()
        self.path = path
        self.name = display_name(path.relative_to(root / "manifests").parts)
        raw = path.read_bytes()
        self.digest = hashlib.sha256(raw).hexdigest()
        self.manifest = json.loads(raw)
        self.config = json.loads(blob_path(root, self.manifest["config"]["digest"]).read_bytes())
        layers = {layer["mediaType"]: layer for layer in self.manifest["layers"]}
        self.gguf = blob_path(root, layers[MODEL_MEDIA_TYPE]["digest"])
        self.size = sum(layer["size"] for layer in self.manifest["layers"])
        self.template = self._layer_text(layers.get("application/vnd.ollama.image.template"))
        self.params = json.loads(self._layer_text(layers.get("application/vnd.ollama.image.params")) or "{}")
        self.modified_at = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        self.thinks = ".Think" in self.template

    @staticmethod
    def _layer_text(layer) -> str:
        return blob_path(models_dir(), layer["digest"]).read_text() if layer else ""

    def details(self) -> dict:
        return {"parent_model": "", "format": self.config["model_format"],
                "family": self.config["model_family"], "families": self.config["model_families"],
                "parameter_size": self.config["model_type"], "quantization_level": self.config["file_type"]}

    def summary(self) -> dict:
        return {"name": self.name, "model": self.name,
                "modified_at": self.modified_at.isoformat().replace("+00:00", "Z"),
                "size": self.size, "digest": self.digest, "details": self.details()}


def find_model(name: str):
    path = manifest_path(models_dir(), parse_name(name))
    return Model(path) if path.is_file() else None


def list_models() -> list:
    root = models_dir() / "manifests"
    paths = sorted(p for p in root.glob("*/*/*/*") if p.is_file()) if root.is_dir() else []
    return sorted((Model(p) for p in paths), key=lambda m: m.modified_at, reverse=True)


def require_model(request: dict) -> Model:
    name = request.get("model") or request.get("name")
    if not name:
        raise ApiError(400, "model is required")
    model = find_model(name)
    if model is None:
        raise ApiError(404, f'model "{name}" not found, try pulling it first')
    return model


# --- pulling from the baked-in store ---------------------------------------------------

def pull_from_store(name: str):
    """Yields Ollama's pull progress messages; raises ApiError when the model can't be had."""
    ref = parse_name(name)
    yield {"status": "pulling manifest"}
    source = manifest_path(STORE, ref)
    if not source.is_file():
        raise ApiError(500, "pull model manifest: file does not exist")
    raw = source.read_bytes()
    manifest = json.loads(raw)
    root = models_dir()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    layers = manifest["layers"] + [manifest["config"]]
    for layer in layers:
        yield from copy_blob(layer, blob_path(STORE, layer["digest"]), blob_path(root, layer["digest"]))
    yield {"status": "verifying sha256 digest"}
    for layer in layers:
        data = blob_path(root, layer["digest"]).read_bytes()
        if "sha256:" + hashlib.sha256(data).hexdigest() != layer["digest"]:
            raise ApiError(500, f"digest mismatch, file must be downloaded again: {layer['digest']}")
    yield {"status": "writing manifest"}
    target = manifest_path(root, ref)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")  # a listing never sees half a file
    partial.write_bytes(raw)
    partial.replace(target)
    yield {"status": "success"}


def copy_blob(layer: dict, source: Path, target: Path):
    status = {"status": f"pulling {layer['digest'][7:19]}", "digest": layer["digest"], "total": layer["size"]}
    if target.is_file() and target.stat().st_size == layer["size"]:
        yield {**status, "completed": layer["size"]}
        return
    partial = target.with_name(f"{target.name}-partial-{threading.get_ident()}")  # pulls may overlap
    done = 0
    with source.open("rb") as src, partial.open("wb") as dst:
        while chunk := src.read(PULL_CHUNK):
            dst.write(chunk)
            done += len(chunk)
            yield {**status, "completed": done}
            time.sleep(PULL_CHUNK_DELAY)
    partial.replace(target)


# --- inference: one llama.cpp server per model file, loaded on first use ---------------

_engines: dict = {}
_engines_lock = threading.Lock()


def engine(model: Model) -> tuple[object, float]:
    """The llama.cpp server for a model and the seconds its loading took (0 if loaded)."""
    with _engines_lock:
        if model.gguf in _engines:
            return _engines[model.gguf]["server"], 0.0
        import xllamacpp  # here, so `ollama list` (the healthcheck) starts fast

        started = time.monotonic()
        params = xllamacpp.CommonParams()
        params.model.path = str(model.gguf)
        params.n_ctx = 8192
        params.n_parallel = 4  # four requests decode together, each with 2048 tokens
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = THREADS
        params.embedding = True  # one server answers both chat and embeddings
        # An embedding's input must fit one physical batch: room for a truncated input.
        params.n_batch = params.n_ubatch = EMBED_MAX_BYTES + 16
        params.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        params.port = 0  # llama.cpp also opens its own HTTP port; any free one on loopback
        params.verbosity = -1
        params.warmup = False
        server = xllamacpp.Server(params)
        _engines[model.gguf] = {"server": server, "model": model}
        return server, time.monotonic() - started


def truncated(inputs):
    """Texts cut to EMBED_MAX_BYTES (UTF-8), as Ollama cuts an embedding's input to the
    model's context rather than fail: every token is at least one byte, so a cut text
    fits. Token ids (lists of ints) pass as they are."""
    if not isinstance(inputs, list):
        return inputs
    return [text.encode()[:EMBED_MAX_BYTES].decode(errors="ignore") if isinstance(text, str) else text
            for text in inputs]


def llama_request(request: dict, messages: list) -> dict:
    """An Ollama chat request as the OpenAI-style request llama.cpp takes."""
    options = request.get("options") or {}
    body = {"messages": messages, "stream": True, "stream_options": {"include_usage": True}}
    num_predict = options.get("num_predict", DEFAULT_NUM_PREDICT)
    body["max_tokens"] = -1 if num_predict is None or num_predict < 0 else num_predict
    for key in ("temperature", "top_k", "top_p", "min_p", "seed", "stop", "repeat_penalty",
                "presence_penalty", "frequency_penalty"):
        if key in options:
            body[key] = options[key]
    return body


def run_chat(server, body: dict, on_text) -> dict:
    """Runs one chat completion, calling on_text(piece) for each piece of text as it is
    generated (on_text returns False when the client has gone: generation stops).
    Returns the finish reason, token usage and llama.cpp's timings, or an error."""
    result = {"finish_reason": "stop", "usage": {}, "timings": {}, "error": None}

    def on_chunk(chunk: dict) -> bool:  # True stops llama.cpp
        if "error" in chunk:
            result["error"] = chunk["error"]
            return True
        for choice in chunk.get("choices", []):
            text = (choice.get("delta") or {}).get("content")
            if text and on_text(text) is False:
                return True
            result["finish_reason"] = choice.get("finish_reason") or result["finish_reason"]
        result["usage"] = chunk.get("usage") or result["usage"]
        result["timings"] = chunk.get("timings") or result["timings"]
        return False

    server.handle_chat_completions(body, on_chunk)
    return result


class Thoughts:
    """Routes a thinking model's generated pieces: the first half of the answer's token
    budget is reasoning, in the field `field` ("thinking", "reasoning") or, when None,
    first in the content between <think> tags; the rest is the answer."""

    def __init__(self, field, max_tokens: int):
        self.field = field
        self.left = max(1, (max_tokens if max_tokens > 0 else DEFAULT_NUM_PREDICT) // 2)
        self.tagged = False  # an opening <think> went out and its closing one not yet

    def piece(self, text: str) -> dict:
        """The fields one generated piece of text goes out in."""
        if self.left > 0:
            self.left -= 1
            if self.field:
                return {self.field: text}
            if not self.tagged:
                self.tagged = True
                return {"content": "<think>\n" + text}
            return {"content": text}
        if self.tagged:
            self.tagged = False
            return {"content": "\n</think>\n\n" + text}
        return {"content": text}


def thoughts_for(model: Model, think, field: str, max_tokens: int):
    """How a request's answer thinks (a Thoughts), or None when it does not."""
    if think in (False, "none"):
        return None
    if not model.thinks:
        if think is not None:
            raise ApiError(400, f'"{model.name}" does not support thinking')
        return None
    return Thoughts(field if think is not None else None, max_tokens)


def thought_through(server, body: dict, as_ollama) -> dict:
    """A whole /v1 chat completion of a thinking model: generated as a stream, so that
    as_ollama routes its pieces, and put together."""
    message, answer = {"role": "assistant", "content": ""}, {"choices": [], "usage": None}
    finish = "stop"

    def on_chunk(chunk: dict) -> bool:
        nonlocal finish
        if "error" in chunk:
            answer["error"] = chunk["error"]
            return True
        chunk = as_ollama(chunk)
        for choice in chunk.get("choices", []):
            for name, value in (choice.get("delta") or {}).items():
                if name != "role" and isinstance(value, str):
                    message[name] = message.get(name, "") + value
            finish = choice.get("finish_reason") or finish
        answer.update({k: chunk[k] for k in ("id", "created", "usage") if chunk.get(k)})
        return False

    server.handle_chat_completions({**body, "stream": True, "stream_options": {"include_usage": True}}, on_chunk)
    if "error" in answer:
        raise llama_error(answer["error"])
    return {**answer, "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


def llama_error(error) -> ApiError:
    if isinstance(error, dict):
        return ApiError(error.get("code") or 500, error.get("message") or json.dumps(error))
    return ApiError(500, str(error))


# --- the HTTP API -----------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked streams like Ollama's
    server_version = "ollama-standin/" + VERSION
    sys_version = ""

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method: str):
        self.started = time.monotonic()
        self.streaming = False
        self.status = 0
        path = urlsplit(self.path).path.rstrip("/") or "/"
        self.openai = path.startswith("/v1/")
        route = ROUTES.get((method, path))
        if route is None and method == "GET" and path.startswith("/v1/models/"):
            route = Handler.openai_model
        try:
            request = self.read_json()
            if route is None:
                self.send(404, b"404 page not found", "text/plain")
            else:
                route(self, request)
        except ApiError as error:
            self.fail(error)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # a bug here: say so to the client and in the log
            traceback.print_exc()
            self.fail(ApiError(500, f"stand-in error: {error!r}"))
        took = (time.monotonic() - self.started) * 1000
        print(f"[GIN] {datetime.now():%Y/%m/%d - %H:%M:%S} | {self.status} | {took:10.3f}ms |"
              f" {self.client_address[0]} | {method} \"{path}\"", flush=True)

    def read_json(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            request = json.loads(raw) if raw.strip() else {}
        except ValueError as error:
            raise ApiError(400, f"invalid JSON: {error}") from None
        if not isinstance(request, dict):
            raise ApiError(400, "request body must be a JSON object")
        return request

    def fail(self, error: ApiError):
        """Before output started: an HTTP error status. After: an error line, as Ollama."""
        if self.streaming:
            self.write_line({"error": str(error)})
            self.end_stream()
        elif self.openai:
            kind = {400: "invalid_request_error", 404: "not_found_error"}.get(error.status, "api_error")
            body = {"error": {"message": str(error), "type": kind, "param": None, "code": None}}
            self.send_json(body, error.status)
        else:
            self.send_json({"error": str(error)}, error.status)

    def send(self, status: int, data: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def send_json(self, body, status: int = 200):
        self.send(status, json.dumps(body).encode(), "application/json; charset=utf-8")

    def start_stream(self, content_type: str):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.streaming = True

    def write_chunk(self, data: bytes) -> bool:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
            return True
        except OSError:  # the client went away
            self.close_connection = True
            return False

    def write_line(self, body: dict) -> bool:
        return self.write_chunk(json.dumps(body).encode() + b"\n")

    def end_stream(self):
        self.write_chunk(b"")

    def log_request(self, code="-", size="-"):  # logged by dispatch, as Ollama's GIN line
        self.status = int(code)

    # --- Ollama's own API ---

    def root(self, request):
        self.send(200, b"Ollama is running", "text/plain; charset=utf-8")

    def version(self, request):
        self.send_json({"version": VERSION})

    def tags(self, request):
        self.send_json({"models": [m.summary() for m in list_models()]})

    def ps(self, request):
        with _engines_lock:
            loaded = list(_engines.values())
        expires = (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        self.send_json({"models": [
            {**e["model"].summary(), "expires_at": expires, "size_vram": 0, "context_length": 2048}
            for e in loaded]})

    def show(self, request):
        model = require_model(request)
        params = "\n".join(f'{k} "{v}"' for k, values in model.params.items() for v in values)
        self.send_json({
            "license": "",
            "modelfile": f"# Modelfile generated by \"ollama show\"\nFROM {model.gguf}\n"
                         f"TEMPLATE \"\"\"{model.template}\"\"\"\n{params}\n",
            "parameters": params, "template": model.template, "details": model.details(),
            "model_info": model.config.get("model_info", {}),
            "capabilities": ["completion", "thinking"] if model.thinks else ["completion"],
            "modified_at": model.summary()["modified_at"]})

    def delete(self, request):
        name = request.get("model") or request.get("name") or ""
        model = find_model(name)
        if model is None:
            raise ApiError(404, f"model '{name}' not found")
        model.path.unlink()
        self.send_json({})

    def pull(self, request):
        name = request.get("model") or request.get("name") or ""
        progress = pull_from_store(name)
        if request.get("stream", True) is False:
            for _ in progress:  # errors raise: an HTTP error status
                pass
            return self.send_json({"status": "success"})
        first = next(progress)  # an invalid name fails here, before output: HTTP 400
        self.start_stream("application/x-ndjson")
        self.write_line(first)
        for message in progress:  # an unknown model fails in here: an error line
            if not self.write_line(message):
                return
        self.end_stream()

    def chat(self, request):
        model = require_model(request)
        messages = [{"role": m.get("role", "user"), "content": m.get("content") or ""}
                    for m in request.get("messages") or []]
        self.respond(request, model, messages, "message")

    def generate(self, request):
        model = require_model(request)
        messages = [{"role": "system", "content": request["system"]}] if request.get("system") else []
        if request.get("prompt"):
            messages.append({"role": "user", "content": request["prompt"]})
        self.respond(request, model, messages, "response")

    def respond(self, request, model: Model, messages: list, field: str):
        """/api/chat and /api/generate: NDJSON pieces, then a final line with the counts."""
        body = llama_request(request, messages)
        thoughts = thoughts_for(model, request.get("think"), "thinking", body["max_tokens"])
        if request.get("format"):  # llama.cpp's JSON grammar fails on this tiny vocabulary
            raise ApiError(400, "format (structured outputs) is not supported by the Ollama stand-in")
        server, load_seconds = engine(model)
        stream = request.get("stream", True) is not False

        def line(parts: dict, done: bool) -> dict:
            text, thinking = parts.get("content", ""), parts.get("thinking")
            body = {"model": model.name, "created_at": now_iso()}
            if field == "message":
                body["message"] = {"role": "assistant", "content": text,
                                   **({"thinking": thinking} if thinking else {})}
            else:
                body.update({"response": text, **({"thinking": thinking} if thinking else {})})
            return {**body, "done": done}

        if not messages:  # Ollama's way to load a model without generating
            return self.send_json({**line({}, True), "done_reason": "load"})
        if stream:
            self.start_stream("application/x-ndjson")
        pieces = {"content": "", "thinking": ""}

        def on_text(text: str) -> bool:
            parts = thoughts.piece(text) if thoughts else {"content": text}
            for name, value in parts.items():
                pieces[name] += value
            return self.write_line(line(parts, False)) if stream else True

        result = run_chat(server, body, on_text)
        if result["error"]:
            raise llama_error(result["error"])
        usage, timings = result["usage"], result["timings"]
        final = {**line({} if stream else pieces, True),
                 "done_reason": "length" if result["finish_reason"] == "length" else "stop",
                 "total_duration": int((time.monotonic() - self.started) * 1e9),
                 "load_duration": int(load_seconds * 1e9),
                 "prompt_eval_count": usage.get("prompt_tokens", 0),
                 "prompt_eval_duration": int(timings.get("prompt_ms", 0) * 1e6),
                 "eval_count": usage.get("completion_tokens", 0),
                 "eval_duration": int(timings.get("predicted_ms", 0) * 1e6)}
        if stream:
            self.write_line(final)
            self.end_stream()
        else:
            self.send_json(final)

    def embed(self, request):
        model = require_model(request)
        inputs = request.get("input", request.get("prompt", ""))
        server, load_seconds = engine(model)
        result = server.handle_embeddings({"input": truncated(inputs if isinstance(inputs, list) else [inputs])})
        if "error" in result:
            raise llama_error(result["error"])
        vectors = [item["embedding"] for item in sorted(result["data"], key=lambda d: d["index"])]
        if self.path.rstrip("/").endswith("/api/embeddings"):  # the older, single-vector API
            return self.send_json({"embedding": vectors[0]})
        self.send_json({"model": model.name, "embeddings": vectors,
                        "total_duration": int((time.monotonic() - self.started) * 1e9),
                        "load_duration": int(load_seconds * 1e9),
                        "prompt_eval_count": result.get("usage", {}).get("prompt_tokens", 0)})

    # --- the OpenAI-compatible API: llama.cpp speaks it, with the model name put back ---

    def openai_models(self, request):
        self.send_json({"object": "list", "data": [self.openai_entry(m) for m in list_models()]})

    def openai_model(self, request):
        model = find_model(self.path.split("/v1/models/", 1)[1])
        if model is None:
            raise ApiError(404, f"model '{self.path.split('/v1/models/', 1)[1]}' not found")
        self.send_json(self.openai_entry(model))

    @staticmethod
    def openai_entry(model: Model) -> dict:
        return {"id": model.name, "object": "model", "created": int(model.modified_at.timestamp()),
                "owned_by": NAMESPACE}

    def openai_chat(self, request):
        model = require_model(request)
        server, _ = engine(model)
        body = {k: v for k, v in request.items() if k not in ("model", "reasoning_effort")}
        if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
            body["max_tokens"] = DEFAULT_NUM_PREDICT
        effort = request.get("reasoning_effort")
        thoughts = thoughts_for(model, None if effort is None else effort != "none", "reasoning",
                                body.get("max_tokens") or body.get("max_completion_tokens"))

        def as_ollama(chunk: dict) -> dict:
            chunk.pop("timings", None)
            if thoughts:
                for choice in chunk.get("choices", []):
                    delta = choice.get("delta") or {}
                    if delta.get("content"):
                        delta.update(thoughts.piece(delta.pop("content")))
            return {**chunk, "model": model.name, "system_fingerprint": "fp_ollama"}

        if not body.get("stream") and thoughts:
            return self.send_json(as_ollama(thought_through(server, body, as_ollama)))
        if not body.get("stream"):
            result = server.handle_chat_completions(body)
            if "error" in result:
                raise llama_error(result["error"])
            return self.send_json(as_ollama(result))

        errors = []  # xllamacpp swallows exceptions raised in callbacks: keep them here

        def on_chunk(chunk: dict) -> bool:  # True stops llama.cpp
            if "error" in chunk and not self.streaming:
                errors.append(chunk["error"])
                return True
            if not self.streaming:
                self.start_stream("text/event-stream")
            payload = chunk if "error" in chunk else as_ollama(chunk)
            return not self.write_chunk(b"data: %s\n\n" % json.dumps(payload).encode())

        server.handle_chat_completions(body, on_chunk)
        if errors or not self.streaming:
            raise llama_error(errors[0] if errors else "llama.cpp returned no output")
        self.write_chunk(b"data: [DONE]\n\n")
        self.end_stream()

    def openai_embeddings(self, request):
        model = require_model(request)
        server, _ = engine(model)
        inputs = request.get("input")
        body = {k: v for k, v in request.items() if k not in ("model", "input")}
        result = server.handle_embeddings({**body, "input": truncated([inputs] if isinstance(inputs, str) else inputs)})
        if "error" in result:
            raise llama_error(result["error"])
        self.send_json({**result, "model": model.name})


ROUTES = {
    ("GET", "/"): Handler.root, ("HEAD", "/"): Handler.root,
    ("GET", "/api/version"): Handler.version, ("HEAD", "/api/version"): Handler.version,
    ("GET", "/api/tags"): Handler.tags,
    ("GET", "/api/ps"): Handler.ps,
    ("POST", "/api/show"): Handler.show,
    ("DELETE", "/api/delete"): Handler.delete,
    ("POST", "/api/pull"): Handler.pull,
    ("POST", "/api/chat"): Handler.chat,
    ("POST", "/api/generate"): Handler.generate,
    ("POST", "/api/embed"): Handler.embed,
    ("POST", "/api/embeddings"): Handler.embed,
    ("GET", "/v1/models"): Handler.openai_models,
    ("POST", "/v1/chat/completions"): Handler.openai_chat,
    ("POST", "/v1/embeddings"): Handler.openai_embeddings,
}


def serve() -> None:
    host, port = host_port()
    # llama.cpp installs its own SIGINT/SIGTERM handlers when it loads a model, and they
    # would swallow `docker stop`. Block both signals in every thread (threads inherit
    # the mask) and take them here, in the main thread, with sigwait.
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    print(f"Listening on {host}:{port} (version {VERSION}, stand-in; models in {models_dir()})", flush=True)
    received = signal.sigwait(signals)
    print(f"{signal.Signals(received).name} received, shutting down", flush=True)
    httpd.shutdown()
    os._exit(0)  # llama.cpp's threads would make a normal interpreter exit wait


# --- the CLI's client side ----------------------------------------------------------------

def client(path: str, body=None):
    host, port = host_port()
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    data = None if body is None else json.dumps(body).encode()
    try:
        return urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}{path}", data), timeout=30)
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]
        except (ValueError, KeyError, TypeError):
            message = error.reason
        sys.exit(f"Error: {message}")
    except OSError:
        sys.exit("Error: could not connect to ollama app, is it running?")


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{size:.0f} {unit}" if size >= 10 or unit == "B" else f"{size:.1f} {unit}"


def human_age(when: str) -> str:
    seconds = int((datetime.now(timezone.utc) - datetime.fromisoformat(when.replace("Z", "+00:00"))).total_seconds())
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds >= length:
            count = seconds // length
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Less than a second ago"


def list_command() -> None:
    models = json.load(client("/api/tags"))["models"]
    rows = [("NAME", "ID", "SIZE", "MODIFIED")] + [
        (m["name"], m["digest"][:12], human_bytes(m["size"]), human_age(m["modified_at"])) for m in models]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("    ".join(cell.ljust(width) for cell, width in zip(row, widths + [0])).rstrip())


def pull_command(name: str) -> None:
    for raw in client("/api/pull", {"model": name}):
        message = json.loads(raw)
        if "error" in message:
            sys.exit(f"Error: {message['error']}")
        total = message.get("total")
        done = f" {100 * message.get('completed', 0) // total}%" if total else ""
        print(message["status"] + done, flush=True)


def main(argv: list) -> None:
    command = argv[0] if argv else "help"
    if command == "serve":
        serve()
    elif command in ("list", "ls"):
        list_command()
    elif command == "pull" and len(argv) == 2:
        pull_command(argv[1])
    elif command in ("-v", "--version"):
        print(f"ollama version is {VERSION} (stand-in)")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
