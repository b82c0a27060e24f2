"""The chat panel's path: jupyter-ai's provider list, its config.json, its LLM chain."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from jupyter_ai.config_manager import ConfigManager
from jupyter_ai.models import ListProvidersEntry
from langchain_core.output_parsers import StrOutputParser

from aihub_providers.providers import PROVIDERS
from aihub_providers.vendors import VENDORS, VENDORS_LIST

from fake_openai import answer_for


@pytest.mark.parametrize("vendor", VENDORS_LIST, ids=lambda v: v.id)
def test_provider_list_entry_is_valid(vendor):
    """What GET /api/ai/providers builds for each provider (ModelProviderHandler)."""
    cls = PROVIDERS[vendor.id]
    entry = ListProvidersEntry(
        id=cls.id, name=cls.name, models=cls.models, chat_models=cls.chat_models(),
        completion_models=cls.completion_models(), help=cls.help,
        auth_strategy=cls.auth_strategy, registry=cls.registry, fields=cls.fields,
        model_id_label=cls.model_id_label,
    )
    # the panel offers models in both lists: "<id>:*" plus a free "Model ID" field
    assert [m for m in entry.models if m in entry.chat_models] == ["*"]
    assert json.loads(entry.model_dump_json())["auth_strategy"] is None


def test_stale_saved_key_and_url_do_not_override_the_environment(point_at, server, tmp_path):
    """A config.json from before (old key, old URL) meets a new key in .env."""
    cfg = point_at(VENDORS["deepseek"])
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({
        "model_provider_id": "deepseek:deepseek-chat",
        "embeddings_provider_id": None,
        "send_with_shift_enter": False,
        "fields": {"deepseek:deepseek-chat": {
            "openai_api_base": "http://127.0.0.1:9/v1", "api_key": "stale-saved-key"}},
        "api_keys": {"DEEPSEEK_API_KEY": "stale-saved-key"},
        "completions_fields": {},
        "embeddings_fields": {},
    }))
    manager = ConfigManager(
        log=logging.getLogger("test"), lm_providers=PROVIDERS, em_providers={},
        defaults={}, config_path=str(config_path), schema_path=str(tmp_path / "schema.json"),
    )
    Provider, params = manager.lm_provider, manager.lm_provider_params
    assert Provider is PROVIDERS["deepseek"]

    # as DefaultChatHandler.create_llm_chain does, then stream as the panel does
    llm = Provider(verbose=True, **params)
    chain = llm.get_chat_prompt_template() | llm | StrOutputParser()

    async def ask():
        return [c async for c in chain.astream(
            {"input": "chat panel question", "history": [], "context": ""}
        )]

    chunks = asyncio.run(ask())
    request = server.state.requests[0]
    assert len(chunks) > 2
    assert "".join(chunks) == answer_for(cfg.model, request.body["messages"])
    assert request.body["messages"][-1]["content"].strip() == "chat panel question"
    assert request.authorization == f"Bearer {cfg.key}"
    assert request.body["messages"][0]["role"] == "system"  # Jupyternaut's prompt
