"""Every model vendor a notebook can use, in this one table.

Each row of VENDORS says where a vendor's OpenAI-compatible API lives and which
environment variables configure it: the key (`key_env`), the base URL (`base_env`,
`default_base` when unset), a few example model ids shown in the chat panel's help,
whether a key is required, and whether the vendor serves embeddings (for the chat
panel's /learn and /ask). Everything else is derived from the table: the chat and
embeddings provider classes (aihub_providers.providers, aihub_providers.embeddings),
which vendors count as configured (aihub_providers.configured) and the wording of
every error (aihub_providers.errors). pyproject.toml names one entry point per row, and
one embeddings entry point per vendor with embeddings (tests/test_vendors.py keeps
them in step).

An empty variable counts as unset, as everywhere in the bundle (`FOO=` in .env).
This module imports nothing heavy: the user image reads it at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional


@dataclass(frozen=True)
class Vendor:
    id: str  # provider id: `%%ai <id>:<model>`, also the entry point's name
    name: str  # shown in the chat panel and in every message
    key_env: str  # environment variable holding the API key
    base_env: str  # environment variable overriding the base URL
    default_base: Optional[str]  # None: base_env is required
    examples: tuple[str, ...] = ()  # a few model ids, for help texts and errors
    key_required: bool = True
    default_key: Optional[str] = None  # sent when no key is set (key not required)
    api_path: str = ""  # appended to the base URL for the OpenAI client, e.g. "/v1"
    # The request field for the answer's length limit: OpenAI renamed max_tokens to
    # max_completion_tokens (LangChain always sends the new name); other vendors read
    # max_tokens and silently ignore the new one.
    max_tokens_field: str = "max_tokens"
    # Embeddings (the chat panel's /learn and /ask): whether the vendor serves
    # POST /embeddings, a few of its embedding model ids, and whether it wants each
    # text marked as a query or a passage (`input_type`, as NVIDIA's retrieval models).
    embeddings: bool = False
    embedding_examples: tuple[str, ...] = ()
    embedding_input_type: bool = False

    # -- settings read from an environment (os.environ or a test's dict) --

    def key(self, environ: Mapping[str, str]) -> str:
        return environ.get(self.key_env, "").strip()

    def api_base(self, base: str) -> str:
        """The URL the OpenAI client talks to: base + api_path, once."""
        base = base.rstrip("/")
        if self.api_path and not base.endswith(self.api_path):
            base += self.api_path
        return base

    def missing_setting(self, environ: Mapping[str, str]) -> Optional[str]:
        """The variable that must still be set before this vendor works, or None."""
        if self.default_base is None and not environ.get(self.base_env, "").strip():
            return self.base_env
        if self.key_required and not self.key(environ):
            return self.key_env
        return None

    @property
    def help(self) -> str:
        """Markdown shown under the model field in the chat panel and by `%ai list`."""
        return self._help("model id", self.examples)

    @property
    def embeddings_help(self) -> str:
        """The same for the chat panel's embedding model (what /learn and /ask use)."""
        return self._help("embedding model id", self.embedding_examples)

    def _help(self, what: str, examples: tuple[str, ...]) -> str:
        text = f"Any {self.name} {what}"
        if examples:
            text += ", e.g. " + ", ".join(f"`{m}`" for m in examples)
        needs = [self.key_env] if self.key_required else []
        if self.default_base is None:
            needs.insert(0, self.base_env)
        if needs:
            text += ". Needs " + " and ".join(f"`{n}`" for n in needs) + " in .env"
        return text + "."


VENDORS_LIST: tuple[Vendor, ...] = (
    Vendor(
        "deepseek", "DeepSeek",
        "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com/v1",
        ("deepseek-chat", "deepseek-reasoner"),
    ),
    Vendor(
        "qwen", "Qwen (Alibaba DashScope)",
        "DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        ("qwen-plus", "qwen-turbo", "qwen-max"),
        embeddings=True, embedding_examples=("text-embedding-v4", "text-embedding-v3"),
    ),
    Vendor(
        "siliconflow", "SiliconFlow",
        "SILICONFLOW_API_KEY", "SILICONFLOW_BASE_URL", "https://api.siliconflow.cn/v1",
        ("Qwen/Qwen3-8B", "deepseek-ai/DeepSeek-V3"),
        embeddings=True, embedding_examples=("BAAI/bge-m3", "Qwen/Qwen3-Embedding-0.6B"),
    ),
    Vendor(
        "moonshot", "Moonshot (Kimi)",
        "MOONSHOT_API_KEY", "MOONSHOT_BASE_URL", "https://api.moonshot.cn/v1",
        ("kimi-k2-0905-preview", "moonshot-v1-8k"),
    ),
    Vendor(
        "zhipu", "Zhipu (GLM)",
        "ZHIPUAI_API_KEY", "ZHIPUAI_BASE_URL", "https://open.bigmodel.cn/api/paas/v4",
        ("glm-4-flash", "glm-4-plus"),
        embeddings=True, embedding_examples=("embedding-3", "embedding-2"),
    ),
    Vendor(
        "nvidia", "NVIDIA NIM",
        "NVIDIA_API_KEY", "NVIDIA_BASE_URL", "https://integrate.api.nvidia.com/v1",
        ("meta/llama-3.1-8b-instruct",),
        embeddings=True, embedding_examples=("nvidia/nv-embedqa-e5-v5", "baai/bge-m3"),
        embedding_input_type=True,
    ),
    Vendor(
        "openrouter", "OpenRouter",
        "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1",
    ),
    Vendor(
        "openai", "OpenAI",
        "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1",
        ("gpt-4o-mini", "gpt-4o"), max_tokens_field="max_completion_tokens",
        embeddings=True, embedding_examples=("text-embedding-3-small", "text-embedding-3-large"),
    ),
    # Any OpenAI-compatible server (vLLM, LM Studio, a gateway): the admin names it.
    Vendor(
        "openai-compatible", "OpenAI-compatible server",
        "OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_BASE_URL", None,
        key_required=False, default_key="EMPTY", embeddings=True,
    ),
    # The bundle's own Ollama, through its OpenAI-compatible API under /v1.
    Vendor(
        "ollama", "Ollama (local)",
        "OLLAMA_API_KEY", "OLLAMA_BASE_URL", "http://ollama:11434",
        key_required=False, default_key="ollama", api_path="/v1",
        embeddings=True, embedding_examples=("nomic-embed-text", "all-minilm", "bge-m3"),
    ),
)

VENDORS: dict[str, Vendor] = {v.id: v for v in VENDORS_LIST}
