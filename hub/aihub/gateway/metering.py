"""Token usage of one request: the vendor's own figures, else an estimate.

Vendors report usage in a non-streamed answer's `usage`, and in a stream's chunks when
asked (`stream_options.include_usage`): usually in one last chunk, some in every chunk.
The last usage seen wins. When none arrives (an old server, a client that hung up,
a vendor that failed mid-answer), the tokens are estimated from the text and the ledger
row says `estimated`.

The estimate: about 4 characters per token for ASCII (English, code), one token per
other character (Chinese, accents). Rough, but on the safe side for Chinese text, where
4 characters per token would undercount several times over.
"""

from __future__ import annotations

import json
import math
from typing import Any, Optional

MAX_TOKENS = 2**31 - 1  # the ledger's integer columns
MESSAGE_OVERHEAD = 4  # tokens a chat message costs besides its text (role, separators)


def text_tokens(text: str) -> float:
    if text.isascii():
        return len(text) / 4
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ascii_chars / 4 + (len(text) - ascii_chars)


def _content_tokens(content: Any) -> float:
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return sum(text_tokens(part["text"]) for part in content
                   if isinstance(part, dict) and isinstance(part.get("text"), str))
    return 0.0


def chat_prompt_tokens(messages: list) -> int:
    total = 0.0
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():  # anything else: the vendor judges it
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                total += text_tokens(function["arguments"])
    return math.ceil(total)


def embedding_input_tokens(value: Any) -> int:
    """`input` of /embeddings: a string, strings, token ids, or lists of token ids."""
    if isinstance(value, str):
        return math.ceil(text_tokens(value))
    if isinstance(value, list):
        total = 0
        for item in value:
            if isinstance(item, str):
                total += math.ceil(text_tokens(item))
            elif isinstance(item, list):
                total += len(item)
            else:
                total += 1  # a token id
        return total
    return 0


def _count(value: Any) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return max(0, min(MAX_TOKENS, int(value)))


def answer_cap(limits: list, choices: Any, default: int) -> tuple[int, bool]:
    """(the most completion tokens a request may use, whether `default` applies).

    limits: the values of the request's length fields (max_tokens, max_completion_tokens,
    num_predict), None where absent; the largest counts. choices: OpenAI's `n`, each
    choice an answer of its own. Raises ValueError for a limit that is not 1 or more.
    """
    given = [limit for limit in limits if limit is not None]
    for limit in given:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"{json.dumps(limit)} is not a whole number of tokens, 1 or more")
    cap = max(given) if given else default
    if isinstance(choices, int) and not isinstance(choices, bool) and choices > 1:
        cap *= choices
    return min(cap, MAX_TOKENS), not given


class Meter:
    """What one request used so far; `tokens()` gives the figures for the ledger.

    `reservation` is what admission counts for the request while it runs: its prompt's
    estimate and its answer's cap. At its end the real usage replaces it."""

    __slots__ = ("prompt_estimate", "completion_cap", "completion_estimate", "usage")

    def __init__(self, prompt_estimate: int, completion_cap: int = 0):
        self.prompt_estimate = prompt_estimate
        self.completion_cap = completion_cap
        self.completion_estimate = 0.0
        self.usage: Optional[dict] = None  # the last usage the vendor reported

    def saw_usage(self, usage: Any) -> None:
        if isinstance(usage, dict) and _count(usage.get("prompt_tokens")) is not None:
            self.usage = usage

    def saw_text(self, text: Any) -> None:
        if isinstance(text, str) and text:
            self.completion_estimate += text_tokens(text)

    def saw_chat_answer(self, answer: Any) -> None:
        """A whole (non-streamed) chat completion: its usage, or its text to estimate."""
        if not isinstance(answer, dict):
            return
        self.saw_usage(answer.get("usage"))
        if self.usage is None:
            for choice in answer.get("choices") or ():
                message = choice.get("message") if isinstance(choice, dict) else None
                if isinstance(message, dict):
                    self.saw_answer_text(message)

    def saw_delta_chunk(self, chunk: dict) -> None:
        """One streamed chunk: usage if it has some, and the text it adds."""
        usage = chunk.get("usage")
        if usage is not None:
            self.saw_usage(usage)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                self.saw_answer_text(delta)

    def saw_answer_text(self, message: dict) -> None:
        """An answer's text and a thinking model's reasoning, which is billed as output
        too: `reasoning_content` (DeepSeek, Qwen) or `reasoning` (Ollama, OpenRouter)."""
        for name in ("content", "reasoning_content", "reasoning"):
            self.saw_text(message.get(name))

    @property
    def reservation(self) -> int:
        return min(self.prompt_estimate + self.completion_cap, MAX_TOKENS)

    @property
    def tokens_beyond_reservation(self) -> int:
        """Tokens used so far beyond the reservation (which the ledger row holds while the
        request runs): a prompt larger than its estimate, a vendor that ignores the cap."""
        return max(0, self.tokens()[2] - self.reservation)

    def tokens(self, *, answered: bool = True) -> tuple[int, int, int, bool]:
        """(prompt, completion, total, estimated). `answered=False`: the vendor never
        answered, so only the prompt it was sent may have been billed."""
        usage = self.usage
        if usage is not None:
            prompt = _count(usage.get("prompt_tokens")) or 0
            completion = _count(usage.get("completion_tokens"))
            total = _count(usage.get("total_tokens"))
            if completion is None:
                completion = max(0, (total or prompt) - prompt)
            if total is None or total < prompt + completion:
                total = prompt + completion
            return prompt, completion, min(total, MAX_TOKENS), False
        completion = math.ceil(self.completion_estimate) if answered else 0
        prompt = self.prompt_estimate
        return prompt, completion, min(prompt + completion, MAX_TOKENS), True
