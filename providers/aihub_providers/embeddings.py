"""jupyter-ai embeddings providers, one per vendor of the table that serves embeddings.

The chat panel's `/learn <folder>` splits the student's files into chunks and asks the
selected embeddings provider for one vector per chunk; `/ask <question>` embeds the
question and hands the nearest chunks to the chat model. Every vendor with
`embeddings=True` in aihub_providers.vendors speaks OpenAI's embeddings API:

    POST {base}/embeddings   {"model": ..., "input": [texts]}  ->  {"data": [{"embedding": [...], "index": 0}], "usage": ...}

OpenAICompatibleEmbeddings does that over httpx, with the chat model's client
(aihub_providers.chat_model: timeout, retries, proxies, CA bundle): no openai SDK, no
langchain-openai and no tiktoken, so nothing is downloaded on first use (LangChain's
OpenAIEmbeddings would fetch tiktoken's encodings from the internet). Texts go out
as they are: the vendor tokenizes them.

A provider reads its key and base URL as the chat providers do
(aihub_providers.providers.vendor_settings: the environment wins), so with the
gateway (AI_KEY_MODE=gateway) embeddings go through the gateway's /embeddings route,
metered and budgeted like chat. Failures are one ProviderError line (errors.py).
jupyter-ai finds these classes through the `jupyter_ai.embeddings_model_providers`
entry points in pyproject.toml.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

from jupyter_ai_magics.embedding_providers import BaseEmbeddingsProvider
from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, SecretStr

from . import errors
from .chat_model import apost, client_options, json_body, post
from .providers import MAX_RETRIES, REQUEST_TIMEOUT, vendor_class, vendor_settings
from .vendors import VENDORS, Vendor

# Texts per request: DashScope's embedding models take at most 10 (others take more).
BATCH_SIZE = 10


class OpenAICompatibleEmbeddings(BaseModel, Embeddings):
    """A LangChain Embeddings on an OpenAI-compatible `/embeddings` endpoint."""

    model_name: str
    openai_api_key: Optional[SecretStr] = None
    openai_api_base: str
    request_timeout: Optional[float] = REQUEST_TIMEOUT
    max_retries: int = MAX_RETRIES
    # NVIDIA's retrieval models embed a query and a passage differently and require
    # `input_type`; other vendors reject or ignore it.
    send_input_type: bool = False

    def _payload(self, texts: list[str], input_type: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.model_name, "input": texts}
        if self.send_input_type:
            payload["input_type"] = input_type
        return payload

    def _url(self) -> str:
        return self.openai_api_base.rstrip("/") + "/embeddings"

    def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        import httpx

        vectors: list[list[float]] = []
        with httpx.Client(**client_options(self.openai_api_key, self.request_timeout)) as client:
            for start in range(0, len(texts), BATCH_SIZE):
                payload = self._payload(texts[start:start + BATCH_SIZE], input_type)
                response = post(client, self._url(), payload, False, self.max_retries)
                vectors += _vectors(response, len(payload["input"]))
        return vectors

    async def _aembed(self, texts: list[str], input_type: str) -> list[list[float]]:
        import httpx

        vectors: list[list[float]] = []
        async with httpx.AsyncClient(**client_options(self.openai_api_key, self.request_timeout)) as client:
            for start in range(0, len(texts), BATCH_SIZE):
                payload = self._payload(texts[start:start + BATCH_SIZE], input_type)
                response = await apost(client, self._url(), payload, False, self.max_retries)
                vectors += _vectors(response, len(payload["input"]))
        return vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(list(texts), "passage")

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text], "query")[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._aembed(list(texts), "passage")

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._aembed([text], "query"))[0]


def _vectors(response, count: int) -> list[list[float]]:
    """The answer's vectors in the order of the texts sent."""
    data = json_body(response).get("data")
    if not isinstance(data, list) or len(data) != count:
        raise errors.APIError(f"expected {count} embeddings, got: {str(data)[:200]}", body=data)
    items = sorted(data, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    vectors = [item.get("embedding") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(v, list) and v for v in vectors):
        raise errors.APIError(f"an embedding is missing in: {str(data)[:200]}", body=data)
    return vectors


class OpenAICompatibleEmbeddingsProvider(BaseEmbeddingsProvider, OpenAICompatibleEmbeddings):
    """Base of every vendor's embeddings provider; a subclass sets `vendor`."""

    vendor: ClassVar[Optional[Vendor]] = None
    models: ClassVar[list[str]] = ["*"]
    registry: ClassVar[bool] = True
    model_id_key: ClassVar[str] = "model_name"
    model_id_label: ClassVar[str] = "Model ID"
    pypi_package_deps: ClassVar[list[str]] = []
    auth_strategy: ClassVar[None] = None

    def __init__(self, **kwargs: Any):
        vendor = self.vendor
        if vendor is None:
            raise TypeError("OpenAICompatibleEmbeddingsProvider is a base class; use a vendor's class")
        key, api_base = vendor_settings(vendor, kwargs)
        if "timeout" in kwargs:
            kwargs.setdefault("request_timeout", kwargs.pop("timeout"))
        super().__init__(openai_api_key=key, openai_api_base=api_base,
                         send_input_type=vendor.embedding_input_type, **kwargs)

    def _mapped(self, exc: BaseException) -> BaseException:
        import httpx

        if not isinstance(exc, (errors.APIError, httpx.HTTPError)):
            return exc
        key = self.openai_api_key
        mapped = errors.from_exception(
            exc, vendor=self.vendor, base_url=self.openai_api_base, model=self.model_name,
            timeout=self.request_timeout, secrets=[key.get_secret_value()] if key else [],
        )
        return mapped or exc

    def _embed(self, texts: list[str], input_type: str) -> list[list[float]]:
        try:
            return super()._embed(texts, input_type)
        except Exception as exc:
            error = self._mapped(exc)
            if error is exc:
                raise
        raise error from None

    async def _aembed(self, texts: list[str], input_type: str) -> list[list[float]]:
        try:
            return await super()._aembed(texts, input_type)
        except Exception as exc:
            error = self._mapped(exc)
            if error is exc:
                raise
        raise error from None


def _vendor_embeddings_provider(class_name: str, vendor_id: str) -> type[OpenAICompatibleEmbeddingsProvider]:
    return vendor_class(OpenAICompatibleEmbeddingsProvider, class_name, vendor_id,
                        VENDORS[vendor_id].embeddings_help)


QwenEmbeddingsProvider = _vendor_embeddings_provider("QwenEmbeddingsProvider", "qwen")
SiliconFlowEmbeddingsProvider = _vendor_embeddings_provider("SiliconFlowEmbeddingsProvider", "siliconflow")
ZhipuEmbeddingsProvider = _vendor_embeddings_provider("ZhipuEmbeddingsProvider", "zhipu")
NvidiaEmbeddingsProvider = _vendor_embeddings_provider("NvidiaEmbeddingsProvider", "nvidia")
OpenAIEmbeddingsProvider = _vendor_embeddings_provider("OpenAIEmbeddingsProvider", "openai")
OpenAICompatibleServerEmbeddingsProvider = _vendor_embeddings_provider(
    "OpenAICompatibleServerEmbeddingsProvider", "openai-compatible")
OllamaEmbeddingsProvider = _vendor_embeddings_provider("OllamaEmbeddingsProvider", "ollama")

# provider id -> class, in the table's order (tests walk this).
EMBEDDINGS_PROVIDERS: dict[str, type[OpenAICompatibleEmbeddingsProvider]] = {
    cls.id: cls
    for cls in (
        QwenEmbeddingsProvider, SiliconFlowEmbeddingsProvider, ZhipuEmbeddingsProvider,
        NvidiaEmbeddingsProvider, OpenAIEmbeddingsProvider,
        OpenAICompatibleServerEmbeddingsProvider, OllamaEmbeddingsProvider,
    )
}
