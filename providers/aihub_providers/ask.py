"""The chat panel's `/ask` with its sources: the answer, then the passages of the
student's own files it was given, quoted with their paths.

jupyter-ai's /ask shows the model's answer alone, so a student cannot tell what it was
based on, or whether it read their notes at all (a small local model often answers
beside the point). This handler is jupyter-ai's, registered under the same name through
the `jupyter_ai.chat_handlers` entry point (which replaces the built-in one), with the
retrieval chain asked to return the passages it used. The conversation memory keeps the
answers without the sources.
"""

from __future__ import annotations

import os
import re

from jupyter_ai.chat_handlers.ask import AskChatHandler

QUOTE_CHARS = 300  # a passage is quoted up to this long: enough to recognise it
# Markdown's punctuation, escaped in a quoted passage so that it shows as written (a
# file's "# Title" must not become a heading, nor its HTML markup).
MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~])")


def quote(passage: str) -> str:
    """A passage as a Markdown quote of its words as written, cut at QUOTE_CHARS."""
    text = " ".join(passage.split())
    cut = len(text) > QUOTE_CHARS
    if cut:
        text = text[:QUOTE_CHARS].rsplit(" ", 1)[0]
    return "> " + MARKDOWN_PUNCTUATION.sub(r"\\\1", text) + (" …" if cut else "")


def sources_section(documents, root_dir: str) -> str:
    """The passages the answer drew on, each quoted under its file's path (relative to
    the student's home); empty when there were none."""
    if not documents:
        return ""
    lines = ["", "", "**Sources**"]
    for document in documents:
        path = document.metadata.get("path", "")
        if path.startswith(root_dir + os.sep):
            path = os.path.relpath(path, root_dir)
        lines += ["", f"`{path}`", "", quote(document.page_content)]
    return "\n".join(lines)


class AnswerWithSources:
    """A retrieval chain whose answer ends with the sources it was given."""

    def __init__(self, chain, root_dir: str):
        chain.return_source_documents = True
        chain.memory.output_key = "answer"  # with two outputs, memory keeps the answer
        self.chain, self.root_dir = chain, root_dir

    async def acall(self, inputs: dict) -> dict:
        result = await self.chain.acall(inputs)
        sources = sources_section(result.get("source_documents"), self.root_dir)
        return {**result, "answer": result["answer"] + sources}


class AskWithSourcesChatHandler(AskChatHandler):
    def create_llm_chain(self, provider, provider_params):
        super().create_llm_chain(provider, provider_params)
        self.llm_chain = AnswerWithSources(self.llm_chain, self.root_dir)
