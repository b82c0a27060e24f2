"""configured_provider_ids and its command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aihub_providers.configured import configured_provider_ids
from aihub_providers.vendors import VENDORS_LIST


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, ["ollama"]),
        ({"DEEPSEEK_API_KEY": "k"}, ["deepseek", "ollama"]),
        ({"DEEPSEEK_API_KEY": "", "MOONSHOT_API_KEY": "   "}, ["ollama"]),  # empty = unset
        ({"DEEPSEEK_BASE_URL": "https://proxy.example/v1"}, ["ollama"]),  # a URL is no key
        ({"OPENAI_COMPATIBLE_API_KEY": "k"}, ["ollama"]),  # the server's URL is what counts
        ({"OPENAI_COMPATIBLE_BASE_URL": "http://vllm:8000/v1"}, ["openai-compatible", "ollama"]),
        (
            {"ZHIPUAI_API_KEY": "k", "DASHSCOPE_API_KEY": "k", "OPENROUTER_API_KEY": "k"},
            ["qwen", "zhipu", "openrouter", "ollama"],  # the table's order, not the env's
        ),
        ({"OLLAMA_BASE_URL": ""}, ["ollama"]),
    ],
)
def test_configured_provider_ids(environ, expected):
    assert configured_provider_ids(environ) == expected


def test_everything_set_lists_every_vendor():
    environ = {v.key_env: "k" for v in VENDORS_LIST} | {"OPENAI_COMPATIBLE_BASE_URL": "http://x/v1"}
    assert configured_provider_ids(environ) == [v.id for v in VENDORS_LIST]


def test_defaults_to_os_environ(monkeypatch):
    monkeypatch.setenv("NVIDIA_API_KEY", "nvapi-x")
    assert configured_provider_ids() == ["nvidia", "ollama"]


def run_cli(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in {v.key_env for v in VENDORS_LIST}}
    return subprocess.run(
        [sys.executable, "-m", "aihub_providers.configured", *args],
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_cli_prints_one_id_per_line():
    assert run_cli(SILICONFLOW_API_KEY="k").splitlines() == ["siliconflow", "ollama"]


def test_cli_json():
    assert json.loads(run_cli("--json", OPENAI_API_KEY="k")) == ["openai", "ollama"]


def test_cli_does_not_load_langchain():
    """The user image runs it at every start: it must stay instant."""
    code = (
        "import sys, aihub_providers.configured as c; c.configured_provider_ids();"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('langchain_core', 'langchain_openai', 'openai', 'jupyter_ai_magics')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.strip() == "[]"
