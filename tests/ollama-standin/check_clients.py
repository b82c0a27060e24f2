"""The official `ollama` and `openai` clients against a running Ollama stand-in, with
qwen2.5:0.5b and tinyllama:test pulled: checks (assert) and figures (printed).
Run it in a container on the stack's network (README.md here has the command):
    BASE=http://ollama:11434 python check_clients.py
"""

import os
import statistics
import time

import ollama
import openai

BASE = os.environ.get("BASE", "http://ollama:11434")
client = ollama.Client(host=BASE)
oai = openai.OpenAI(base_url=BASE + "/v1", api_key="ollama")  # Ollama ignores the key


def say(*parts):
    print(*parts, flush=True)


def user(text):
    return [{"role": "user", "content": text}]


def reply(text, seed, tokens=16):
    options = {"seed": seed, "num_predict": tokens}
    return client.chat(model="qwen2.5:0.5b", messages=user(text), options=options).message.content


say("ollama list:", [m.model for m in client.list().models])

# /api/chat streaming (the first chat also loads the model), and the final line's counters.
started, first, pieces = time.monotonic(), None, []
for chunk in client.chat(model="qwen2.5:0.5b", messages=user("Tell me a story"), stream=True, options={"seed": 1}):
    first = first or time.monotonic() - started
    pieces.append(chunk.message.content)
assert chunk.done and chunk.eval_count == 32 and chunk.eval_duration > 0, chunk
say("chat stream:", repr("".join(pieces)), f"| eval_count={chunk.eval_count}",
    f"eval_duration={chunk.eval_duration} ns done_reason={chunk.done_reason}")

# Generated, not canned: other seeds or prompts give other text, the same ones the same.
a, b, again, other = reply("Hello", 1), reply("Hello", 2), reply("Hello", 1), reply("What is Python?", 1)
assert a != b and a != other and a == again, (a, b, other, again)
say("seed 1:", repr(a), "| seed 2:", repr(b), "| other prompt:", repr(other))
assert client.chat(model="qwen2.5:0.5b", messages=user("x"), options={"num_predict": 5}).eval_count == 5
say("generate:", repr(client.generate(model="tinyllama:test", prompt="Why?", options={"num_predict": 6}).response))
say("show:", client.show("qwen2.5:0.5b").details.family, "| ps:", [m.model for m in client.ps().models],
    "| embed dims:", len(client.embed(model="qwen2.5:0.5b", input="hello").embeddings[0]))
try:
    client.chat(model="llama3:8b", messages=user("x"))
    raise SystemExit("no error for a model that is not pulled")
except ollama.ResponseError as error:
    assert error.status_code == 404
    say("not pulled:", error.status_code, error.error)

# The OpenAI client: plain, streaming with usage in the last chunk, models, embeddings.
completion = oai.chat.completions.create(model="qwen2.5:0.5b", messages=user("Hello"), max_tokens=10, seed=5)
assert completion.usage.completion_tokens == 10 and completion.choices[0].message.content
say("openai chat:", repr(completion.choices[0].message.content), "| usage:", completion.usage)
started, first_openai, chunks = time.monotonic(), None, []
for chunk in oai.chat.completions.create(model="qwen2.5:0.5b", messages=user("Hello"), stream=True,
                                         stream_options={"include_usage": True}, seed=6):
    if first_openai is None and chunk.choices and chunk.choices[0].delta.content:
        first_openai = time.monotonic() - started
    chunks.append(chunk)
assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 32
say("openai stream:", repr("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)),
    "| last chunk usage:", chunks[-1].usage.completion_tokens)
say("openai models:", [m.id for m in oai.models.list().data], "| embeddings dims:",
    len(oai.embeddings.create(model="qwen2.5:0.5b", input="hi").data[0].embedding))
try:
    oai.chat.completions.create(model="llama3:8b", messages=user("x"))
    raise SystemExit("no error for a model that is not pulled")
except openai.NotFoundError as error:
    say("openai not pulled:", error.status_code, error.body)

# Figures: first-token latency with the model loaded, and decoding speed.
latencies = []
for i in range(10):
    started = time.monotonic()
    for chunk in client.chat(model="qwen2.5:0.5b", messages=user(f"latency {i}"), stream=True, options={"num_predict": 4}):
        latencies.append(time.monotonic() - started)
        break
short = client.chat(model="qwen2.5:0.5b", messages=user("short"))
started = time.monotonic()
long = client.chat(model="qwen2.5:0.5b", messages=user("long"), options={"num_predict": 1000})
wall = time.monotonic() - started
say(f"FIGURE first token (/api/chat stream, model loaded): median {statistics.median(latencies) * 1000:.1f} ms"
    f" (min {min(latencies) * 1000:.1f}, max {max(latencies) * 1000:.1f}); first chat incl. model load"
    f" {first * 1000:.1f} ms; openai stream {first_openai * 1000:.1f} ms")
for name, r in (("32 tokens", short), ("1000 tokens", long)):
    say(f"FIGURE decode {name}: {r.eval_count / r.eval_duration * 1e9:.0f} tok/s server-side"
        f" ({r.eval_count} in {r.eval_duration / 1e6:.1f} ms); prompt {r.prompt_eval_count} tokens"
        f" in {r.prompt_eval_duration / 1e6:.2f} ms")
say(f"FIGURE 1000 tokens wall clock through the client: {wall * 1000:.0f} ms = {long.eval_count / wall:.0f} tok/s")
