"""The vendor table, the provider classes and pyproject's entry points agree."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from aihub_providers import providers
from aihub_providers.vendors import VENDORS, VENDORS_LIST

ROOT = Path(__file__).resolve().parents[1]
GROUP = "jupyter_ai.model_providers"

# The brief's spec, written out once here so a typo in the table fails a test:
# id: (key variable, base URL variable, default base URL, key required)
SPEC = {
    "deepseek": ("DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com/v1", True),
    "qwen": ("DASHSCOPE_API_KEY", "DASHSCOPE_BASE_URL", "https://dashscope.aliyuncs.com/compatible-mode/v1", True),
    "siliconflow": ("SILICONFLOW_API_KEY", "SILICONFLOW_BASE_URL", "https://api.siliconflow.cn/v1", True),
    "moonshot": ("MOONSHOT_API_KEY", "MOONSHOT_BASE_URL", "https://api.moonshot.cn/v1", True),
    "zhipu": ("ZHIPUAI_API_KEY", "ZHIPUAI_BASE_URL", "https://open.bigmodel.cn/api/paas/v4", True),
    "nvidia": ("NVIDIA_API_KEY", "NVIDIA_BASE_URL", "https://integrate.api.nvidia.com/v1", True),
    "openrouter": ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1", True),
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1", True),
    "openai-compatible": ("OPENAI_COMPATIBLE_API_KEY", "OPENAI_COMPATIBLE_BASE_URL", None, False),
    "ollama": ("OLLAMA_API_KEY", "OLLAMA_BASE_URL", "http://ollama:11434", False),
}


def pyproject_entry_points() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["entry-points"][GROUP]


def test_table_matches_the_spec():
    got = {v.id: (v.key_env, v.base_env, v.default_base, v.key_required) for v in VENDORS_LIST}
    assert got == SPEC
    assert len(VENDORS) == len(VENDORS_LIST)  # ids are unique


def test_every_vendor_has_a_provider_class_in_table_order():
    assert list(providers.PROVIDERS) == [v.id for v in VENDORS_LIST]
    for vendor in VENDORS_LIST:
        cls = providers.PROVIDERS[vendor.id]
        assert cls.vendor is vendor
        assert (cls.id, cls.name, cls.help) == (vendor.id, vendor.name, vendor.help)
        assert getattr(providers, cls.__name__) is cls  # importable by name


def test_pyproject_names_one_entry_point_per_vendor_named_by_its_id():
    expected = {
        pid: f"aihub_providers.providers:{cls.__name__}" for pid, cls in providers.PROVIDERS.items()
    }
    assert pyproject_entry_points() == expected


def test_installed_entry_points_load_our_classes():
    """The installed metadata is current (re-run `pip install -e providers` if not)."""
    dist = importlib.metadata.distribution("aihub-providers")
    eps = {ep.name: ep for ep in dist.entry_points if ep.group == GROUP}
    assert set(eps) == set(pyproject_entry_points())
    for name, ep in eps.items():
        assert ep.load().id == name


@pytest.mark.parametrize("vendor", VENDORS_LIST, ids=lambda v: v.id)
def test_registry_provider_any_model_and_shown_in_the_chat_panel(vendor):
    cls = providers.PROVIDERS[vendor.id]
    assert cls.registry is True and cls.models == ["*"]
    # The chat panel lists models that are in both lists; "*" must survive.
    assert set(cls.models) & set(cls.chat_models())
    assert cls.auth_strategy is None
    for example in vendor.examples:
        assert f"`{example}`" in cls.help


def test_help_names_what_the_admin_must_set():
    assert "`DEEPSEEK_API_KEY`" in VENDORS["deepseek"].help
    assert "`OPENAI_COMPATIBLE_BASE_URL`" in VENDORS["openai-compatible"].help
    assert "Needs" not in VENDORS["ollama"].help


@pytest.mark.parametrize(
    "base, expected",
    [
        ("http://ollama:11434", "http://ollama:11434/v1"),
        ("http://ollama:11434/", "http://ollama:11434/v1"),
        ("http://gpu-box:11434/v1", "http://gpu-box:11434/v1"),
    ],
)
def test_ollama_api_base_adds_v1_once(base, expected):
    assert VENDORS["ollama"].api_base(base) == expected


def test_other_vendors_use_the_base_url_as_given():
    assert VENDORS["zhipu"].api_base("https://open.bigmodel.cn/api/paas/v4/") == (
        "https://open.bigmodel.cn/api/paas/v4"
    )


def test_readme_documents_every_variable():
    readme = (ROOT / "README.md").read_text()
    for vendor in VENDORS_LIST:
        for name in (vendor.id, vendor.key_env, vendor.base_env):
            assert re.search(rf"`{re.escape(name)}`", readme), name


EMBEDDINGS_GROUP = "jupyter_ai.embeddings_model_providers"


def test_vendors_with_embeddings_have_an_embeddings_provider_and_entry_point():
    from aihub_providers import embeddings

    with_embeddings = [v.id for v in VENDORS_LIST if v.embeddings]
    assert with_embeddings == ["qwen", "siliconflow", "zhipu", "nvidia", "openai",
                               "openai-compatible", "ollama"]
    assert list(embeddings.EMBEDDINGS_PROVIDERS) == with_embeddings
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["entry-points"][EMBEDDINGS_GROUP] == {
        pid: f"aihub_providers.embeddings:{cls.__name__}"
        for pid, cls in embeddings.EMBEDDINGS_PROVIDERS.items()
    }
    for vendor_id, cls in embeddings.EMBEDDINGS_PROVIDERS.items():
        vendor = VENDORS[vendor_id]
        assert (cls.vendor, cls.id, cls.name, cls.help) == (vendor, vendor.id, vendor.name,
                                                            vendor.embeddings_help)
        for example in vendor.embedding_examples:
            assert f"`{example}`" in cls.help


def test_jupyter_ai_registers_our_embeddings_providers_through_the_entry_point():
    """What AiExtension does at start (get_em_providers reads the installed entry points)."""
    from jupyter_ai_magics.utils import get_em_providers

    from aihub_providers import embeddings

    registered = get_em_providers()
    for vendor_id, cls in embeddings.EMBEDDINGS_PROVIDERS.items():
        assert registered[vendor_id] is cls
