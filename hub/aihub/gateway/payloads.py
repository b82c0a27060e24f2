"""A client's request body: checked, routed to a provider, and made ready for the vendor.

Anything a client can send gets a 4xx with a reason, never a 500: bytes that are not
JSON, JSON that is not an object, a missing or non-string `model`, `messages` that is
not a list, `stream` that is not true/false. The vendor still judges everything else
(roles, parameters), and its answer reaches the student.

The body goes to the vendor as received (no re-encoding) unless the gateway must
change it: the provider prefix of `provider:model` comes off, a stream asks for
usage (`stream_options.include_usage`) so the gateway can meter it, and a chat request
that names no answer length gets AI_DEFAULT_MAX_TOKENS (in the vendor's own field), so
the tokens admission reserves for the answer are a true bound.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .config import Upstream
from .errors import GatewayError
from .ledger import not_text
from .metering import answer_cap, chat_prompt_tokens, embedding_input_tokens

CHAT = "chat/completions"
EMBEDDINGS = "embeddings"
MAX_MODEL_LENGTH = 256


@dataclass
class ProxyRequest:
    endpoint: str  # CHAT or EMBEDDINGS
    upstream: Upstream
    model: str  # the vendor's own model id
    stream: bool
    client_wants_usage: bool  # the client asked for the usage chunk itself
    body: bytes  # what the vendor gets
    prompt_estimate: int
    completion_cap: int  # the most tokens its answer may take (0: embeddings)
    injected_stream_options: bool = False


def bad_request(message: str, code: str = "invalid_request") -> GatewayError:
    return GatewayError(400, message, code)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def decode(raw: bytes) -> dict:
    if not raw.strip():
        raise bad_request("the request has no body: send a JSON object", "invalid_json")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise bad_request("the request's JSON is nested too deeply", "invalid_json") from None
    except ValueError as error:  # also UnicodeDecodeError: bytes that are not UTF-8
        reason = str(error).split(":")[0] if not isinstance(error, UnicodeDecodeError) else "not UTF-8 text"
        raise bad_request(f"the request body is not valid JSON ({reason})", "invalid_json") from None
    if not isinstance(value, dict):
        raise bad_request(f"the request body must be a JSON object, not {type(value).__name__}", "invalid_json")
    return value


def unknown_provider(provider: str, upstreams: Mapping[str, Upstream], unconfigured: Mapping[str, str]) -> GatewayError:
    configured = ", ".join(upstreams) or "none"
    if provider in unconfigured:
        message = (f"provider '{provider}' is not set up on this hub: the admin must set "
                   f"{unconfigured[provider]} in .env. Providers: {configured}")
    else:
        message = f"no provider '{provider}' on this hub. Providers: {configured}"
    return GatewayError(404, message, "unknown_provider")


def route(
    model: str,
    path_provider: Optional[str],
    upstreams: Mapping[str, Upstream],
    unconfigured: Mapping[str, str],
) -> tuple[Upstream, str]:
    """(upstream, vendor's model id) from /<provider>/v1/... or `provider:model`."""
    if path_provider is None:
        provider, sep, model = model.partition(":")
        if not sep or not provider or not model:
            raise bad_request(
                f"model must be provider:model here, e.g. {next(iter(upstreams), 'ollama')}:<model> "
                f"(providers: {', '.join(upstreams) or 'none'}); or call /<provider>/v1/...",
                "invalid_model",
            )
    else:
        provider = path_provider
    upstream = upstreams.get(provider)
    if upstream is None:
        raise unknown_provider(provider, upstreams, unconfigured)
    return upstream, model


def _check_model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' is missing: name the model as a string", "invalid_model")
    if len(model) > MAX_MODEL_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in model):
        raise bad_request("'model' is not a model id (too long, or control characters)", "invalid_model")
    if not_text(model):
        # JSON's \ud800 escapes decode to lone surrogates, which no vendor or ledger can take.
        raise bad_request(f"'model' {json.dumps(model)} is not a model id: {not_text(model)}", "invalid_model")
    return model


def prepare(
    raw: bytes,
    endpoint: str,
    path_provider: Optional[str],
    upstreams: Mapping[str, Upstream],
    unconfigured: Mapping[str, str],
    default_max_tokens: int,
) -> ProxyRequest:
    body = decode(raw)
    upstream, model = route(_check_model(body), path_provider, upstreams, unconfigured)
    changed = model != body["model"]
    if changed:
        body["model"] = model

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false", "invalid_stream")

    wants_usage = False
    injected = False
    if endpoint == CHAT:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("'messages' must be a non-empty list of messages", "invalid_messages")
        if not all(isinstance(m, dict) for m in messages):
            raise bad_request("each of 'messages' must be an object like {\"role\": \"user\", \"content\": \"...\"}",
                              "invalid_messages")
        prompt_estimate = chat_prompt_tokens(messages)
        try:
            completion_cap, uses_default = answer_cap([body.get("max_tokens"), body.get("max_completion_tokens")],
                                                 body.get("n"), default_max_tokens)
        except ValueError as error:
            raise bad_request(f"'max_tokens' (or 'max_completion_tokens') {error}", "invalid_max_tokens") from None
        if uses_default:
            body[upstream.vendor.max_tokens_field] = default_max_tokens
            changed = True
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise bad_request("'stream_options' must be an object", "invalid_stream")
        if stream:
            wants_usage = bool((options or {}).get("include_usage"))
            if not wants_usage:
                # Ask for usage so the stream can be metered; the extra chunk is stripped.
                body["stream_options"] = {**(options or {}), "include_usage": True}
                changed = injected = True
    else:
        if stream:
            raise bad_request("embeddings cannot be streamed", "invalid_stream")
        value = body.get("input")
        if not isinstance(value, (str, list)) or (isinstance(value, list) and not value):
            raise bad_request("'input' must be a string or a non-empty list", "invalid_input")
        prompt_estimate = embedding_input_tokens(value)
        completion_cap = 0

    # ensure_ascii: a lone surrogate escape (\ud800) is valid JSON but not UTF-8.
    data = json.dumps(body, separators=(",", ":")).encode() if changed else raw
    return ProxyRequest(endpoint, upstream, model, stream, wants_usage, data, prompt_estimate, completion_cap,
                        injected)


def without_stream_options(request: ProxyRequest) -> ProxyRequest:
    """The same request without the gateway's stream_options, for a vendor that refuses it."""
    body = json.loads(request.body)
    body.pop("stream_options", None)
    request.body = json.dumps(body, separators=(",", ":")).encode()
    request.injected_stream_options = False
    return request
