"""jupyter-ai model providers, one per row of aihub_providers.vendors.VENDORS.

Every vendor speaks the OpenAI chat-completions API, so one class does the work:
OpenAICompatibleProvider, a jupyter-ai BaseProvider on our own small LangChain chat
model (aihub_providers.chat_model, httpx only: no openai SDK, no langchain-openai). Each
vendor's class only names its row of the table. jupyter-ai finds them through the
`jupyter_ai.model_providers` entry points in pyproject.toml, so in a notebook

    %%ai deepseek:deepseek-chat
    Explain list comprehensions in two sentences.

works with nothing to install, and the chat panel lists the same providers.

How a provider behaves:

- Settings come from the environment when the provider is made, which jupyter-ai does
  for every `%%ai` cell (and the chat panel whenever its settings change). The
  environment wins over a key or base URL passed as an argument, so a stale key saved
  in the chat panel's config.json never overrides the admin's; an argument is used
  only when the variable is unset.
- A missing required setting raises ProviderError naming the variable. auth_strategy
  is None, so the magic's own key check (a poorer message) and the chat panel's key
  field stay out of the way.
- Any model id works (`models = ["*"]`, a registry provider); the table's examples are
  shown in the help text. jupyter-ai's chat panel only offers the ids common to
  `models` and `chat_models()`, and for a registry provider it always shows "<id>:*"
  with a free "Model ID" field, so examples listed there would either hide the
  provider or do nothing; help text is where they are useful.
- Requests time out after 60 s and are retried once, so a failure shows quickly.
  Streaming reports token usage (stream_options.include_usage). The length limit
  goes out as max_tokens, which every vendor but OpenAI reads (OpenAI gets its newer
  max_completion_tokens).
- Every failure of a call (sync, async, streaming or not) is raised as one
  ProviderError line (aihub_providers.errors), without the httpx chain.
- A thinking model's reasoning is shown where jupyter-ai shows Markdown or text: it
  asks each provider for a prompt template before calling it, for the `%%ai` cell's
  output format (get_prompt_template) or for the chat panel
  (get_chat_prompt_template), and that choice sets the chat model's reasoning_style:
  a collapsed block above the answer for markdown and the chat panel, a quoted one
  for `-f text`, the answer only for code, html, json, ... (aihub_providers.reasoning).
  AI_SHOW_REASONING=false shows the answer only, everywhere.
"""

from __future__ import annotations

import os
from typing import Any, AsyncIterator, ClassVar, Iterator, Optional

from jupyter_ai_magics import BaseProvider

from . import errors
from . import reasoning as thinking
from .chat_model import OpenAICompatibleChatModel
from .vendors import VENDORS, Vendor

REQUEST_TIMEOUT = 60.0  # seconds per attempt
MAX_RETRIES = 1
MODEL_LIST_TIMEOUT = 5.0  # seconds, for GET {base}/models while explaining an error
# `%%ai -f FORMAT` -> how the reasoning is shown above the answer (other formats: not)
REASONING_STYLES = {"markdown": thinking.MARKDOWN, "md": thinking.MARKDOWN, "text": thinking.TEXT}


def _call_errors() -> tuple[type[BaseException], ...]:
    import httpx  # imported by the call that failed, so already loaded

    return (errors.APIError, httpx.HTTPError)


class OpenAICompatibleProvider(BaseProvider, OpenAICompatibleChatModel):
    """Base of every vendor's provider; a subclass sets `vendor` (a row of VENDORS)."""

    vendor: ClassVar[Optional[Vendor]] = None
    models = ["*"]
    registry = True
    model_id_key = "model_name"
    model_id_label = "Model ID"
    pypi_package_deps: ClassVar[list[str]] = []
    auth_strategy = None

    def __init__(self, **kwargs: Any):
        vendor = self.vendor
        if vendor is None:
            raise TypeError("OpenAICompatibleProvider is a base class; use a vendor's class")
        key, api_base = vendor_settings(vendor, kwargs)
        if "timeout" not in kwargs and "request_timeout" not in kwargs:
            kwargs["request_timeout"] = REQUEST_TIMEOUT
        kwargs.setdefault("max_retries", MAX_RETRIES)
        kwargs.setdefault("stream_usage", True)
        super().__init__(openai_api_key=key, openai_api_base=api_base, **kwargs)

    def _request_payload(self, *args: Any, **kwargs: Any) -> dict:
        payload = super()._request_payload(*args, **kwargs)
        for field in ("max_tokens", "max_completion_tokens"):
            if field in payload and field != self.vendor.max_tokens_field:
                payload[self.vendor.max_tokens_field] = payload.pop(field)
        return payload

    # -- where the answer goes decides how its reasoning is shown --

    def get_prompt_template(self, format: str):
        """jupyter-ai's magics ask this for the cell's output format, then call us."""
        self.reasoning_style = REASONING_STYLES.get(format) if thinking.shown() else None
        return super().get_prompt_template(format)

    def get_chat_prompt_template(self):
        """The chat panel asks this, then streams us into Markdown."""
        self.reasoning_style = thinking.MARKDOWN if thinking.shown() else None
        return super().get_chat_prompt_template()

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"openai_api_key": self.vendor.key_env}

    # -- error mapping, where the calls happen --

    def _secrets(self) -> list[str]:
        key = self.openai_api_key
        return [key.get_secret_value()] if key is not None else []

    def _provider_error(self, exc: BaseException, served: Optional[list[str]]) -> Exception:
        mapped = errors.from_exception(
            exc,
            vendor=self.vendor,
            base_url=self.openai_api_base or "",
            model=self.model_name,
            timeout=self.request_timeout,
            secrets=self._secrets(),
            served=served,
        )
        return mapped or exc

    def _served_models(self, exc: BaseException) -> Optional[list[str]]:
        if not errors.wants_model_list(exc):
            return None
        try:
            return self.list_models(MODEL_LIST_TIMEOUT)
        except Exception:
            return None

    async def _aserved_models(self, exc: BaseException) -> Optional[list[str]]:
        if not errors.wants_model_list(exc):
            return None
        try:
            return await self.alist_models(MODEL_LIST_TIMEOUT)
        except Exception:
            return None

    def _generate(self, *args: Any, **kwargs: Any):
        try:
            return super()._generate(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _call_errors()):
                raise
            error = self._provider_error(exc, self._served_models(exc))
        raise error from None

    async def _agenerate(self, *args: Any, **kwargs: Any):
        try:
            return await super()._agenerate(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _call_errors()):
                raise
            error = self._provider_error(exc, await self._aserved_models(exc))
        raise error from None

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator:
        try:
            yield from super()._stream(*args, **kwargs)
            return
        except Exception as exc:
            if not isinstance(exc, _call_errors()):
                raise
            error = self._provider_error(exc, self._served_models(exc))
        raise error from None

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator:
        try:
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
            return
        except Exception as exc:
            if not isinstance(exc, _call_errors()):
                raise
            error = self._provider_error(exc, await self._aserved_models(exc))
        raise error from None


def vendor_settings(vendor: Vendor, kwargs: dict[str, Any]) -> tuple[str, str]:
    """The key and API base URL a provider uses: the environment's, else an argument's,
    else the table's default; ProviderError naming the variable when one is missing.
    Removes the key and base arguments from kwargs."""
    environ = os.environ
    # A key or base URL may arrive under any of these names (jupyter-ai's own
    # providers use the first ones); none of them may linger as an extra field.
    passed_key = _pop_first(kwargs, "api_key", "openai_api_key", vendor.key_env.lower())
    passed_base = _pop_first(kwargs, "base_url", "openai_api_base", vendor.base_env.lower())

    base = environ.get(vendor.base_env, "").strip() or passed_base or vendor.default_base
    if not base:
        raise errors.not_set_up(vendor, vendor.base_env) from None
    key = vendor.key(environ) or passed_key or vendor.default_key
    if not key:
        raise errors.not_set_up(vendor, vendor.key_env) from None
    return key, vendor.api_base(base)


def _pop_first(kwargs: dict[str, Any], *names: str) -> Optional[str]:
    """Remove every name from kwargs; return the first non-empty value (as text)."""
    found = None
    for name in names:
        value = kwargs.pop(name, None)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if found is None and value:
            found = str(value).strip() or None
    return found


def vendor_class(base: type, class_name: str, vendor_id: str, help_text: str) -> type:
    """`base` made for one row of the vendor table (an entry point names the class)."""
    vendor = VENDORS[vendor_id]
    namespace = {
        "__module__": base.__module__,
        "__qualname__": class_name,
        "__doc__": f"{vendor.name}: {help_text}",
        "vendor": vendor,
        "id": vendor.id,
        "name": vendor.name,
        "help": help_text,
    }
    return type(class_name, (base,), namespace)


def _vendor_provider(class_name: str, vendor_id: str) -> type[OpenAICompatibleProvider]:
    return vendor_class(OpenAICompatibleProvider, class_name, vendor_id, VENDORS[vendor_id].help)


DeepSeekProvider = _vendor_provider("DeepSeekProvider", "deepseek")
QwenProvider = _vendor_provider("QwenProvider", "qwen")
SiliconFlowProvider = _vendor_provider("SiliconFlowProvider", "siliconflow")
MoonshotProvider = _vendor_provider("MoonshotProvider", "moonshot")
ZhipuProvider = _vendor_provider("ZhipuProvider", "zhipu")
NvidiaProvider = _vendor_provider("NvidiaProvider", "nvidia")
OpenRouterProvider = _vendor_provider("OpenRouterProvider", "openrouter")
OpenAIProvider = _vendor_provider("OpenAIProvider", "openai")
OpenAICompatibleServerProvider = _vendor_provider("OpenAICompatibleServerProvider", "openai-compatible")
OllamaProvider = _vendor_provider("OllamaProvider", "ollama")

# provider id -> class, in the table's order (tests and tools walk this).
PROVIDERS: dict[str, type[OpenAICompatibleProvider]] = {
    cls.id: cls
    for cls in (
        DeepSeekProvider, QwenProvider, SiliconFlowProvider, MoonshotProvider,
        ZhipuProvider, NvidiaProvider, OpenRouterProvider, OpenAIProvider,
        OpenAICompatibleServerProvider, OllamaProvider,
    )
}
