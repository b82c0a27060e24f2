"""A small LangChain chat model for OpenAI-compatible chat-completions APIs, over httpx.

Our providers used LangChain's ChatOpenAI, which costs every kernel and the server the
openai SDK (0.3-0.5 s of CPU and ~45 MiB to import and build its client) and
langchain-openai (another 0.15 s, 13 MiB). What we use of them is one endpoint:

    POST {base}/chat/completions        plain JSON, or SSE with "stream": true
    GET  {base}/models                  only to explain a 404 (errors.py)

OpenAICompatibleChatModel does that with httpx (already installed: jupyter-server
and langchain need it), sync and async, streaming or not. It keeps what we relied on
from ChatOpenAI and the openai SDK:

- fields `model_name`, `openai_api_key`, `openai_api_base`, `request_timeout`
  (also `timeout`), `max_retries`, `temperature`, `max_tokens`, `top_p`, `stop`,
  `streaming`, `stream_usage`, `model_kwargs`; any other keyword (`-m {...}` in a
  magic) goes into the request body, as ChatOpenAI's model_kwargs did;
- one timeout for every phase of a request (connect, each read), so a stream that
  stalls fails like a request that never answers;
- retries like the openai SDK: on a timeout, a connection failure, HTTP 408, 409,
  429 and 5xx, unless the answer says `x-should-retry: false` (the bundle's gateway
  does for a spent budget); `x-should-retry: true` always retries. The wait is the
  answer's `retry-after-ms`/`retry-after` when 0-60 s, else 0.5 s, 1 s, ... (at most
  8 s) less up to 25 %. A stream is retried only before its first byte;
- streaming asks for usage (`stream_options.include_usage`), keeps the last usage
  seen (some vendors send it in every chunk) and yields it once, in a last chunk
  with no text, as `usage_metadata`; plain answers carry it too;
- proxies and CA certificates from the environment (HTTPS_PROXY, NO_PROXY,
  SSL_CERT_FILE), as httpx reads them.

A thinking model's reasoning (`reasoning_content` or `reasoning` next to the answer, or
a leading `<think>…</think>` in it) never stays in the answer's text: it goes to
`additional_kwargs["reasoning_content"]`, and, when `reasoning_style` is set
("markdown" or "text"), also into the text as a block above the answer (reasoning.py).
A block we wrote there is taken off again when that answer comes back as history.

Failures are raised as httpx exceptions (timeouts, transport errors) or as
errors.APIStatusError / errors.APIError (an HTTP error status, an error in a body);
the provider turns them into one ProviderError line (errors.from_exception).
httpx is imported when a request is made, not with this module. The request plumbing
(client_options, post, apost, json_body) also serves the embeddings
(aihub_providers.embeddings).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from typing import Any, AsyncIterator, Iterator, Optional, Union

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import SecretStr, model_validator

from . import reasoning as thinking
from .errors import APIError, APIStatusError

USER_AGENT = "aihub-providers"
INITIAL_RETRY_DELAY = 0.5  # seconds; doubles per retry (tests make it short)
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0  # a server's retry-after longer than this is not waited for
RETRY_STATUSES = (408, 409, 429)

_ALIASES = {
    "model": "model_name",
    "timeout": "request_timeout",
    "max_completion_tokens": "max_tokens",
    "api_key": "openai_api_key",
    "base_url": "openai_api_base",
}


class OpenAICompatibleChatModel(BaseChatModel):
    """A chat model on an OpenAI-compatible `/chat/completions` endpoint."""

    model_name: str = "gpt-4o-mini"
    openai_api_key: Optional[SecretStr] = None
    openai_api_base: str = "https://api.openai.com/v1"
    request_timeout: Optional[float] = 60.0
    max_retries: int = 1
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    top_p: Optional[float] = None
    stop: Optional[Union[list[str], str]] = None
    streaming: bool = False
    stream_usage: bool = True
    model_kwargs: dict[str, Any] = {}
    # None: the text is the answer only; "markdown"/"text": the reasoning's block above it.
    reasoning_style: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _collect_extra(cls, values: Any) -> Any:
        """Aliases to their fields; any unknown keyword goes into model_kwargs."""
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for alias, name in _ALIASES.items():
            if alias in values:
                value = values.pop(alias)
                if values.get(name) is None:
                    values[name] = value
        known = set(cls.model_fields)
        extra = {k: values.pop(k) for k in list(values) if k not in known}
        if extra:
            values["model_kwargs"] = {**(values.get("model_kwargs") or {}), **extra}
        return values

    # -- LangChain's identity --

    @property
    def _llm_type(self) -> str:
        return "openai-compatible-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "base_url": self.openai_api_base,
                **self._default_params}

    @property
    def _default_params(self) -> dict[str, Any]:
        params = {"temperature": self.temperature, "max_tokens": self.max_tokens,
                  "top_p": self.top_p}
        return {k: v for k, v in params.items() if v is not None} | dict(self.model_kwargs)

    # -- the request --

    def _request_payload(
        self, messages: list[BaseMessage], stop: Optional[list[str]], stream: bool, **kwargs: Any
    ) -> dict:
        payload: dict[str, Any] = {
            "model": self.model_name,
            "messages": [_without_shown_reasoning(m) for m in convert_to_openai_messages(messages)],
            **self._default_params,
        }
        stop = stop if stop is not None else self.stop
        if stop:
            payload["stop"] = stop
        payload.update({k: v for k, v in kwargs.items() if v is not None})
        if "max_completion_tokens" in payload and "max_tokens" not in payload:
            payload["max_tokens"] = payload.pop("max_completion_tokens")
        if stream:
            payload["stream"] = True
            if self.stream_usage:
                payload["stream_options"] = {"include_usage": True}
        else:
            payload.pop("stream", None)
            payload.pop("stream_options", None)
        return payload

    def _url(self, path: str) -> str:
        return self.openai_api_base.rstrip("/") + path

    def _client_options(self, timeout: Optional[float] = None) -> dict[str, Any]:
        return client_options(self.openai_api_key, self.request_timeout if timeout is None else timeout)

    def _send(self, client, payload: dict, stream: bool):
        return post(client, self._url("/chat/completions"), payload, stream, self.max_retries)

    async def _asend(self, client, payload: dict, stream: bool):
        return await apost(client, self._url("/chat/completions"), payload, stream, self.max_retries)

    # -- LangChain's four ways to call a chat model --

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            chunks = self._stream(messages, stop, run_manager, **kwargs)
            return _result_from_chunks(list(chunks))
        import httpx

        payload = self._request_payload(messages, stop, False, **kwargs)
        with httpx.Client(**self._client_options()) as client:
            response = self._send(client, payload, stream=False)
            return _chat_result(json_body(response), self.reasoning_style)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[AsyncCallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.streaming:
            chunks = [c async for c in self._astream(messages, stop, run_manager, **kwargs)]
            return _result_from_chunks(chunks)
        import httpx

        payload = self._request_payload(messages, stop, False, **kwargs)
        async with httpx.AsyncClient(**self._client_options()) as client:
            response = await self._asend(client, payload, stream=False)
            return _chat_result(json_body(response), self.reasoning_style)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import httpx

        payload = self._request_payload(messages, stop, True, **kwargs)
        with httpx.Client(**self._client_options()) as client:
            response = self._send(client, payload, stream=True)
            try:
                reader = _StreamReader(self.reasoning_style)
                for line in response.iter_lines():
                    for chunk in reader.feed(line):
                        if run_manager:
                            run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                for chunk in reader.finish():
                    yield chunk
            finally:
                response.close()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[AsyncCallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        import httpx

        payload = self._request_payload(messages, stop, True, **kwargs)
        async with httpx.AsyncClient(**self._client_options()) as client:
            response = await self._asend(client, payload, stream=True)
            try:
                reader = _StreamReader(self.reasoning_style)
                async for line in response.aiter_lines():
                    for chunk in reader.feed(line):
                        if run_manager:
                            await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                        yield chunk
                for chunk in reader.finish():
                    yield chunk
            finally:
                await response.aclose()

    # -- GET {base}/models --

    def list_models(self, timeout: float) -> list[str]:
        """The model ids the server lists; no retry. Raises on any failure."""
        import httpx

        with httpx.Client(**self._client_options(timeout)) as client:
            response = client.get(self._url("/models"))
            response.raise_for_status()
            return _model_ids(response.json())

    async def alist_models(self, timeout: float) -> list[str]:
        import httpx

        async with httpx.AsyncClient(**self._client_options(timeout)) as client:
            response = await client.get(self._url("/models"))
            response.raise_for_status()
            return _model_ids(response.json())


# -- helpers --

def client_options(api_key: Optional[SecretStr], timeout: Optional[float]) -> dict[str, Any]:
    """httpx client options: one timeout for every phase, the CA bundle, the key."""
    import httpx

    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    if api_key is not None and api_key.get_secret_value():
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    return {
        "timeout": httpx.Timeout(timeout),
        "verify": _ssl_context(),
        "follow_redirects": True,
        "headers": headers,
    }


def post(client, url: str, payload: dict, stream: bool, max_retries: int):
    """POST the payload (retrying as the openai SDK does); the open response."""
    import httpx

    retries = 0
    while True:
        request = client.build_request("POST", url, json=payload)
        try:
            response = client.send(request, stream=stream)
        except (httpx.TimeoutException, httpx.TransportError):
            if retries >= max_retries:
                raise
            time.sleep(_retry_delay(retries, None))
            retries += 1
            continue
        if response.status_code < 400:
            return response
        response.read()
        response.close()
        if retries < max_retries and _should_retry(response):
            time.sleep(_retry_delay(retries, response))
            retries += 1
            continue
        raise _status_error(response)


async def apost(client, url: str, payload: dict, stream: bool, max_retries: int):
    """post(), on an httpx.AsyncClient."""
    import httpx

    retries = 0
    while True:
        request = client.build_request("POST", url, json=payload)
        try:
            response = await client.send(request, stream=stream)
        except (httpx.TimeoutException, httpx.TransportError):
            if retries >= max_retries:
                raise
            await asyncio.sleep(_retry_delay(retries, None))
            retries += 1
            continue
        if response.status_code < 400:
            return response
        await response.aread()
        await response.aclose()
        if retries < max_retries and _should_retry(response):
            await asyncio.sleep(_retry_delay(retries, response))
            retries += 1
            continue
        raise _status_error(response)


_SSL_CONTEXT = None


def _ssl_context():
    """One SSL context per process (loading the CA bundle costs ~20 ms each time);
    httpx's own: SSL_CERT_FILE / SSL_CERT_DIR when set, else certifi's bundle."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        import httpx

        _SSL_CONTEXT = httpx.create_ssl_context()
    return _SSL_CONTEXT


def _should_retry(response) -> bool:
    should = response.headers.get("x-should-retry")
    if should == "true":
        return True
    if should == "false":
        return False
    return response.status_code in RETRY_STATUSES or response.status_code >= 500


def _retry_delay(retries: int, response) -> float:
    """Seconds to wait before retry number `retries` + 1 (the openai SDK's rule)."""
    if response is not None:
        after = _retry_after(response.headers)
        if after is not None and 0 < after <= MAX_RETRY_AFTER:
            return after
    delay = min(INITIAL_RETRY_DELAY * 2.0**retries, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _retry_after(headers) -> Optional[float]:
    try:
        return float(headers["retry-after-ms"]) / 1000
    except (KeyError, TypeError, ValueError):
        pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return email.utils.mktime_tz(parsed) - time.time()


def _status_error(response) -> APIStatusError:
    """The error for an HTTP error answer (its body already read)."""
    text = response.text.strip()
    body: Any = text
    try:
        body = json.loads(text)
    except ValueError:
        pass
    if isinstance(body, dict) and "error" in body:
        body = body["error"]  # as the openai SDK keeps it
    return APIStatusError(
        f"Error code: {response.status_code} - {body}",
        response=response,
        body=body,
        status_code=response.status_code,
    )


def json_body(response) -> dict:
    try:
        data = response.json()
    except ValueError:
        raise APIError(
            f"the answer is not JSON: {response.text[:200]}", body=response.text
        ) from None
    if not isinstance(data, dict):
        raise APIError(f"unexpected answer: {str(data)[:200]}", body=data)
    if data.get("error"):
        raise APIError(str(data["error"]), body=data["error"])
    return data


def _model_ids(data: Any) -> list[str]:
    items = data.get("data", []) if isinstance(data, dict) else data
    return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]


def _usage_metadata(usage: Optional[dict]) -> Optional[dict]:
    if not isinstance(usage, dict):
        return None
    inputs = int(usage.get("prompt_tokens") or 0)
    outputs = int(usage.get("completion_tokens") or 0)
    metadata: dict[str, Any] = {
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": int(usage.get("total_tokens") or inputs + outputs),
    }
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is not None:
        metadata["input_token_details"] = {"cache_read": cached}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    if reasoning is not None:
        metadata["output_token_details"] = {"reasoning": reasoning}
    return metadata


def _without_shown_reasoning(message: dict) -> dict:
    content = message.get("content")
    if message.get("role") == "assistant" and isinstance(content, str):
        return {**message, "content": thinking.strip_shown_reasoning(content)}
    return message


def _reasoning_field(message: dict) -> str:
    """The reasoning a message or delta carries in a field of its own (either name)."""
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) else ""


def _chat_result(data: dict, reasoning_style: Optional[str] = None) -> ChatResult:
    choices = data.get("choices") or []
    if not choices:
        raise APIError(f"the answer has no choices: {str(data)[:200]}", body=data)
    usage = _usage_metadata(data.get("usage"))
    generations = []
    for choice in choices:
        message = choice.get("message") or {}
        additional = {}
        if message.get("tool_calls"):
            additional["tool_calls"] = message["tool_calls"]
        reasoning, answer = thinking.split_think(message.get("content") or "")
        reasoning = _reasoning_field(message) + reasoning
        if reasoning:
            additional["reasoning_content"] = reasoning
        if reasoning and reasoning_style:
            answer = thinking.present(reasoning_style, reasoning, answer)
        metadata = {
            "model_name": data.get("model"),
            "finish_reason": choice.get("finish_reason"),
            "system_fingerprint": data.get("system_fingerprint"),
            "id": data.get("id"),
            "token_usage": data.get("usage"),
        }
        ai = AIMessage(
            content=answer,
            additional_kwargs=additional,
            response_metadata={k: v for k, v in metadata.items() if v is not None},
            id=data.get("id"),
            **({"usage_metadata": usage} if usage else {}),
        )
        generations.append(
            ChatGeneration(message=ai, generation_info={"finish_reason": choice.get("finish_reason")})
        )
    return ChatResult(
        generations=generations,
        llm_output={"token_usage": data.get("usage"), "model_name": data.get("model"),
                    "system_fingerprint": data.get("system_fingerprint")},
    )


def _result_from_chunks(chunks: list[ChatGenerationChunk]) -> ChatResult:
    if not chunks:
        raise APIError("the stream ended without an answer", body=None)
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole += chunk
    message = whole.message
    ai = AIMessage(
        content=message.content,
        additional_kwargs=message.additional_kwargs,
        response_metadata=message.response_metadata,
        id=message.id,
        **({"usage_metadata": message.usage_metadata} if message.usage_metadata else {}),
    )
    return ChatResult(generations=[ChatGeneration(message=ai, generation_info=whole.generation_info)])


class _StreamReader:
    """Server-sent events of a streamed chat completion, line by line, to chunks."""

    def __init__(self, reasoning_style: Optional[str] = None):
        self._data: list[str] = []
        self._usage: Optional[dict] = None
        self._done = False
        self._splitter = thinking.ThinkSplitter()
        self._presenter = thinking.Presenter(reasoning_style) if reasoning_style else None

    def feed(self, line: str) -> list[ChatGenerationChunk]:
        if self._done:
            return []
        line = line.rstrip("\r")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):  # a comment (OpenRouter's keep-alive)
            return []
        if line.startswith("data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []  # event:, id:, retry: are not used

    def finish(self) -> list[ChatGenerationChunk]:
        chunks = self._dispatch()
        self._done = True
        reasoning, answer = self._splitter.finish()
        text = self._text(reasoning, answer)
        if self._presenter:
            text += self._presenter.close()
        if text or reasoning:
            chunks.append(ChatGenerationChunk(message=AIMessageChunk(
                content=text,
                additional_kwargs={"reasoning_content": reasoning} if reasoning else {},
            )))
        usage = _usage_metadata(self._usage)
        if usage:
            chunks.append(ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage)))
        return chunks

    def _dispatch(self) -> list[ChatGenerationChunk]:
        if not self._data:
            return []
        data = "\n".join(self._data)
        self._data = []
        if data.strip() == "[DONE]":
            self._done = True
            return []
        try:
            event = json.loads(data)
        except ValueError:
            raise APIError(f"a streamed event is not JSON: {data[:200]}", body=data) from None
        if not isinstance(event, dict):
            return []
        if event.get("error"):
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise APIError(str(message), body=error)
        if event.get("usage"):
            self._usage = event["usage"]  # the last one seen counts
        chunks = []
        for choice in event.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            finish = choice.get("finish_reason")
            metadata = {}
            if finish:
                metadata = {"finish_reason": finish, "model_name": event.get("model")}
            reasoning, answer = self._splitter.feed(delta.get("content") or "")
            reasoning = _reasoning_field(delta) + reasoning
            additional = {"reasoning_content": reasoning} if reasoning else {}
            message = AIMessageChunk(
                content=self._text(reasoning, answer),
                additional_kwargs=additional,
                response_metadata={k: v for k, v in metadata.items() if v is not None},
                id=event.get("id"),
            )
            chunks.append(ChatGenerationChunk(
                message=message, generation_info={"finish_reason": finish} if finish else None
            ))
        return chunks

    def _text(self, reasoning: str, answer: str) -> str:
        """A chunk's text: the answer, after the reasoning's part of its block if shown."""
        if self._presenter is None:
            return answer
        return self._presenter.reasoning(reasoning) + self._presenter.answer(answer)
