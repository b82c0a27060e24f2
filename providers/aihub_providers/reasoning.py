"""A thinking model's reasoning, kept apart from its answer.

Models that think aloud return their reasoning in one of three ways, all of which reach
our chat model over the OpenAI-compatible API:

- a field of its own next to the answer: `reasoning_content` (DeepSeek's reasoner,
  Qwen3 with thinking on at DashScope or SiliconFlow) or `reasoning` (Ollama's and
  OpenRouter's OpenAI-compatible APIs);
- inside the answer, first, between `<think>` and `</think>` (Ollama's qwen3 and
  deepseek-r1 in older releases, vLLM without a reasoning parser).

ThinkSplitter takes the second form apart, piece by piece as a stream arrives, so the
answer never carries the tags. How the reasoning is then shown depends on where the
answer goes (providers.py decides): `%%ai` with markdown output and the chat panel get
a collapsed block above the answer, `%%ai -f text` a quoted one, every other format
(code, html, json, ...) the answer only. Presenter writes that block as the pieces
come; strip_shown_reasoning takes it off again before an earlier answer goes back to
the model as history (reasoning is not meant to be sent back, and it costs tokens).

AI_SHOW_REASONING=false (the hub passes it to students' servers) hides it everywhere.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

SHOW_SETTING = "AI_SHOW_REASONING"
OPEN_TAG, CLOSE_TAG = "<think>", "</think>"

MARKDOWN, TEXT = "markdown", "text"  # the styles of the block
# Each line of the reasoning is quoted ("> "), so the block stays apart even when open,
# and an empty line never appears inside it: the first one after the opening is its end.
QUOTE = "> "
OPENINGS = {MARKDOWN: "<details><summary>Thinking</summary>\n\n" + QUOTE, TEXT: "Thinking:\n" + QUOTE}
CLOSINGS = {MARKDOWN: "\n\n</details>\n\n", TEXT: "\n\n"}


def shown(environ: Optional[Mapping[str, str]] = None) -> bool:
    """Whether reasoning is shown at all (AI_SHOW_REASONING, true unless "false")."""
    environ = os.environ if environ is None else environ
    return environ.get(SHOW_SETTING, "true").strip().lower() != "false"


class ThinkSplitter:
    """Splits an answer's text into (reasoning, answer) as its pieces arrive: a leading
    `<think>…</think>` is reasoning, everything else is answer."""

    def __init__(self):
        self._state = "start"  # start -> thinking -> after -> answer
        self._held = ""  # text that may still turn out to be part of a tag
        self._thought = False  # whether any reasoning came yet

    def feed(self, text: str) -> tuple[str, str]:
        text = self._held + text
        self._held = ""
        if self._state == "start":
            stripped = text.lstrip()
            if stripped.startswith(OPEN_TAG):
                self._state = "thinking"
                text = stripped[len(OPEN_TAG):]
            elif OPEN_TAG.startswith(stripped):  # too short to tell yet
                self._held = text
                return "", ""
            else:
                self._state = "answer"
        reasoning = ""
        if self._state == "thinking":
            if not self._thought:  # the newlines after the opening tag
                text = text.lstrip("\n")
                self._thought = bool(text)
            end = text.find(CLOSE_TAG)
            if end < 0:
                # Hold back what may be the start of the closing tag, and the newlines
                # that usually come before it.
                cut = len(text) - _partial_suffix(text, CLOSE_TAG)
                cut = len(text[:cut].rstrip("\n"))
                self._held = text[cut:]
                return text[:cut], ""
            reasoning = text[:end].rstrip("\n")
            text = text[end + len(CLOSE_TAG):]
            self._state = "after"
        if self._state == "after":  # the newlines between the closing tag and the answer
            text = text.lstrip("\n")
            if text:
                self._state = "answer"
        return reasoning, text

    def finish(self) -> tuple[str, str]:
        """What was held back at the end: an unfinished tag counts as what it is in."""
        held, self._held = self._held, ""
        if self._state == "thinking":
            return held, ""
        return "", held


def split_think(text: str) -> tuple[str, str]:
    """(reasoning, answer) of a whole answer's text."""
    splitter = ThinkSplitter()
    reasoning, answer = splitter.feed(text)
    more_reasoning, more_answer = splitter.finish()
    return reasoning + more_reasoning, answer + more_answer


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest end of `text` that is a beginning of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class Presenter:
    """Writes reasoning and answer as one text, piece by piece: the block (style
    MARKDOWN or TEXT) opens at the first reasoning and closes before the answer."""

    def __init__(self, style: str):
        self.style = style
        self._open = False
        self._closed = False
        self._trim = False  # the answer's leading blanks after the block: the block's gap is enough

    def reasoning(self, text: str) -> str:
        if not text or self._closed:  # reasoning after the answer began: not shown
            return ""
        opening = ""
        if not self._open:
            text = text.lstrip()
            if not text:
                return ""
            self._open = True
            opening = OPENINGS[self.style]
        return opening + text.replace("\n", "\n" + QUOTE)

    def answer(self, text: str) -> str:
        if not text:
            return ""
        closing = self.close()
        if self._trim:
            text = text.lstrip()
            self._trim = not text
        return closing + text

    def close(self) -> str:
        if self._open and not self._closed:
            self._closed = self._trim = True
            return CLOSINGS[self.style]
        self._closed = True
        return ""


def present(style: str, reasoning: str, answer: str) -> str:
    """A whole answer with its reasoning block above it."""
    presenter = Presenter(style)
    return presenter.reasoning(reasoning) + presenter.answer(answer) + presenter.close()


def strip_shown_reasoning(text: str) -> str:
    """An earlier answer without the reasoning block we put above it."""
    for style, opening in OPENINGS.items():
        if text.startswith(opening):
            end = text.find(CLOSINGS[style], len(opening))
            return "" if end < 0 else text[end + len(CLOSINGS[style]):]
    return text
