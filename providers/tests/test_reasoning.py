"""A thinking model's reasoning, shown apart from its answer: in `%%ai` output (Markdown
and text), in the chat panel, never in `-f code`, and nowhere with AI_SHOW_REASONING=false.

The loopback vendor (fake_openai) thinks when steered with `reasoning`, in each of the
three forms models use: a `reasoning_content` field, a `reasoning` field, `<think>` tags.
"""

from __future__ import annotations

import asyncio
import json
import textwrap

import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser

from aihub_providers import reasoning
from aihub_providers.chat_model import OpenAICompatibleChatModel
from aihub_providers.providers import PROVIDERS
from aihub_providers.vendors import VENDORS

from fake_openai import answer_for, reasoning_for

from .shell import run_report

MODES = ["reasoning_content", "reasoning", "tags"]
THINKING = "<details><summary>Thinking</summary>"


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


# -- taking it apart and putting it together --

def test_think_tags_split_however_the_stream_cuts_them():
    text = "\n<think>\nFirst thought.\nSecond </thought>.\n</think>\n\nThe answer <think>stays</think>."
    expected = ("First thought.\nSecond </thought>.", "The answer <think>stays</think>.")
    assert reasoning.split_think(text) == expected
    for size in range(1, len(text) + 1):
        assert split_in_pieces(text, size) == expected, size


def split_in_pieces(text: str, size: int) -> tuple[str, str]:
    splitter = reasoning.ThinkSplitter()
    parts = [splitter.feed(text[i:i + size]) for i in range(0, len(text), size)]
    parts.append(splitter.finish())
    return "".join(p[0] for p in parts), "".join(p[1] for p in parts)


@pytest.mark.parametrize("text", ["No thinking here.", "  <thin", "<think></think>Only this.", ""])
def test_text_without_reasoning_is_all_answer(text):
    assert reasoning.split_think(text) == ("", text if "</think>" not in text else "Only this.")


@pytest.mark.parametrize("style", [reasoning.MARKDOWN, reasoning.TEXT])
def test_the_block_sits_above_the_answer_and_comes_off_again(style):
    shown = reasoning.present(style, "Step one.\n\nStep two.", "The answer.\n\nIn two parts.")
    if style == reasoning.MARKDOWN:
        assert shown == ("<details><summary>Thinking</summary>\n\n> Step one.\n> \n> Step two."
                         "\n\n</details>\n\nThe answer.\n\nIn two parts.")
    else:
        assert shown == "Thinking:\n> Step one.\n> \n> Step two.\n\nThe answer.\n\nIn two parts."
    assert reasoning.strip_shown_reasoning(shown) == "The answer.\n\nIn two parts."
    assert reasoning.present(style, "", "Just the answer.") == "Just the answer."


def test_pieces_make_the_same_block_as_the_whole():
    """Models' tokens start with a space: the block and the answer start without."""
    presenter = reasoning.Presenter(reasoning.MARKDOWN)
    pieces = [presenter.reasoning(t) for t in ["\n", " Step", " one.\n", "Step two."]]
    pieces += [presenter.answer(t) for t in ["", " ", " The", " answer."]] + [presenter.close()]
    whole = reasoning.present(reasoning.MARKDOWN, " Step one.\nStep two.", "  The answer.")
    assert "".join(pieces) == whole == (
        "<details><summary>Thinking</summary>\n\n> Step one.\n> Step two.\n\n</details>\n\nThe answer.")


# -- the chat model, streamed and not --

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
@pytest.mark.parametrize("style", [None, reasoning.MARKDOWN])
def test_chat_model_keeps_reasoning_out_of_the_answer(mode, stream, style, server):
    server.state.steer = {"reasoning": mode}
    model = OpenAICompatibleChatModel(model_name="test-model", openai_api_base=server.url + "/v1",
                                      openai_api_key="k3y", reasoning_style=style)
    question = [HumanMessage("why is the sky blue")]
    if stream:
        chunks = list(model.stream(question))
        assert len(chunks) > 3
        message = chunks[0]
        for chunk in chunks[1:]:
            message += chunk
    else:
        message = model.invoke(question)
    answer = answer_for("test-model", user("why is the sky blue"))
    thought = reasoning_for(user("why is the sky blue"))
    assert message.additional_kwargs["reasoning_content"] == thought
    if style is None:
        assert message.content == answer
    else:
        assert message.content == reasoning.present(style, thought, answer)
    assert message.usage_metadata["output_token_details"] == {"reasoning": len(thought.split())}


def test_a_shown_block_is_not_sent_back_as_history(server):
    server.state.steer = {"reasoning": "reasoning_content"}
    model = OpenAICompatibleChatModel(model_name="test-model", openai_api_base=server.url + "/v1",
                                      openai_api_key="k3y", reasoning_style=reasoning.MARKDOWN)
    first = model.invoke([HumanMessage("one")])
    assert first.content.startswith(THINKING)
    model.invoke([HumanMessage("one"), AIMessage(first.content), HumanMessage("two")])
    sent = server.state.requests[-1].body["messages"]
    assert sent[1] == {"role": "assistant", "content": answer_for("test-model", user("one"))}


# -- %%ai in IPython --

SHELL = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("aihub_providers.lazy_magics")
    report = []
    for cell in json.loads(sys.argv[1]):
        ip.rl_next_input = None
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            result = ip.run_cell(cell)
        error = result.error_in_exec or result.error_before_exec
        value = result.result
        report.append({
            "stderr": err.getvalue(),
            "error": repr(error) if error else None,
            # IPython's Markdown and HTML keep it in .data, jupyter-ai's text output in .text
            "shown": None if value is None else getattr(value, "data", None) or value.text,
            "next_input": ip.rl_next_input,
        })
    print("REPORT " + json.dumps(report))
    """
)


@pytest.mark.parametrize("mode", MODES)
def test_ai_magic_shows_reasoning_above_a_markdown_answer_only(mode, server, tmp_path):
    server.state.steer = {"reasoning": mode}
    cells = [
        "%%ai deepseek:deepseek-reasoner\nwhy is the sky blue",
        "%%ai deepseek:deepseek-reasoner -f text\nwhy is grass green",
        "%%ai deepseek:deepseek-reasoner -f code\nprint the sky's colour",
        "%%ai deepseek:deepseek-reasoner -f html\nan html sky",
    ]
    env = {"DEEPSEEK_API_KEY": "k3y-d", "DEEPSEEK_BASE_URL": server.url + "/v1"}
    markdown, text, code, html = run_report(SHELL, [cells], env, tmp_path)
    for report in (markdown, text, code, html):
        assert report["error"] is None, report

    requests = [r.body for r in server.state.requests]
    thoughts = [reasoning_for(body["messages"]) for body in requests]
    answers = [answer_for("deepseek-reasoner", body["messages"]) for body in requests]

    # markdown (the default): a collapsed, quoted block, then the answer
    shown = markdown["shown"]
    assert shown == reasoning.present(reasoning.MARKDOWN, thoughts[0], answers[0])
    assert shown.startswith(THINKING + "\n\n> The question has") and shown.endswith(answers[0])
    # text: a quoted block under "Thinking:"
    assert text["shown"] == reasoning.present(reasoning.TEXT, thoughts[1], answers[1])
    # code: the answer only, in the next cell; html: the answer only
    assert code["next_input"] == answers[2]
    assert html["shown"] == answers[3]
    for report in (code, html):
        assert "question has" not in json.dumps(report) and "Thinking" not in json.dumps(report)

    # the earlier answers go back as history (max_history) without their reasoning
    history = [m["content"] for m in requests[-1]["messages"] if m["role"] == "assistant"]
    assert history == answers[1:3]


def test_ai_magic_hides_reasoning_when_the_admin_says_so(server, tmp_path):
    server.state.steer = {"reasoning": "tags"}
    env = {"DEEPSEEK_API_KEY": "k3y-d", "DEEPSEEK_BASE_URL": server.url + "/v1",
           reasoning.SHOW_SETTING: "false"}
    cells = ["%%ai deepseek:deepseek-reasoner\nwhy is the sky blue",
             "%%ai deepseek:deepseek-reasoner -f text\nwhy is grass green"]
    markdown, text = run_report(SHELL, [cells], env, tmp_path)
    answers = [answer_for("deepseek-reasoner", r.body["messages"]) for r in server.state.requests]
    assert markdown["shown"] == answers[0]
    assert text["shown"] == answers[1]


# -- the chat panel: Jupyternaut's chain, streamed --

def chat_panel_reply(server, point_at) -> tuple[str, list]:
    point_at(VENDORS["deepseek"])
    llm = PROVIDERS["deepseek"](model_id="deepseek-reasoner", verbose=True)
    # as jupyter-ai's DefaultChatHandler.create_llm_chain builds it and stream_reply runs it
    chain = llm.get_chat_prompt_template() | llm | StrOutputParser()

    async def ask():
        return [c async for c in chain.astream({"input": "why is the sky blue", "history": [], "context": ""})]

    chunks = asyncio.run(ask())
    return "".join(chunks), chunks


@pytest.mark.parametrize("mode", MODES)
def test_chat_panel_streams_reasoning_in_a_block_above_the_answer(mode, server, point_at):
    server.state.steer = {"reasoning": mode}
    reply, chunks = chat_panel_reply(server, point_at)
    messages = server.state.requests[0].body["messages"]
    thought, answer = reasoning_for(messages), answer_for("deepseek-reasoner", messages)
    assert reply == reasoning.present(reasoning.MARKDOWN, thought, answer)
    # the block opens with the first piece of reasoning, before any of the answer
    assert [c for c in chunks if c][0].startswith(THINKING + "\n\n> ")


def test_chat_panel_hides_reasoning_when_the_admin_says_so(server, point_at, monkeypatch):
    monkeypatch.setenv(reasoning.SHOW_SETTING, "false")
    server.state.steer = {"reasoning": "reasoning_content"}
    reply, _ = chat_panel_reply(server, point_at)
    assert reply == answer_for("deepseek-reasoner", server.state.requests[0].body["messages"])
