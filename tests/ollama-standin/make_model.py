"""Builds the stand-in's model store: tiny llama-architecture GGUF models with random
weights, laid out like an Ollama registry (manifests + sha256 blobs), so that the
stand-in's /api/pull copies them exactly as Ollama copies layers from its registry.

    python make_model.py STORE_DIR

llama.cpp runs these models for real (genuine token-by-token inference at thousands
of tokens/s on a CPU); the text is gibberish because the weights are random.
"""

import hashlib
import json
import sys
from pathlib import Path

import gguf
import numpy as np

# Store names: the bundle's default model, so tests use the real default name; a second
# one (different weights) for tests that need two models; a vendor's model id, for the
# end-to-end tests' vendor upstream (this image again, standing in for DeepSeek); a
# thinking model (its template, like Qwen3's, reads .Think: the stand-in then thinks);
# and the default embedding model, served for /api/embed and /v1/embeddings (mean
# pooling over the last layer: real computation, a poor but genuine text embedding).
MODELS = {"qwen2.5:0.5b": 1, "tinyllama:test": 2, "deepseek-chat:latest": 3, "qwen3:0.6b": 4,
          "nomic-embed-text:latest": 5}  # name -> random seed
THINKING_MODELS = {"qwen3:0.6b"}

N_EMBD, N_HEAD, N_FF, N_LAYER, N_CTX = 64, 4, 128, 2, 2048

# ChatML, the format of Qwen 2.5: llama.cpp renders OpenAI-style messages with it.
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
# The same, as Ollama shows it in /api/show (Go template syntax).
OLLAMA_TEMPLATE = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)
# A thinking model's: Ollama offers `think` for a model whose template reads .Think.
OLLAMA_THINKING_TEMPLATE = OLLAMA_TEMPLATE + "{{ if and .IsThinkSet (not .Think) }}<think>\n\n</think>\n\n{{ end }}"

WORDS = """the a of and to in is it you that he was for on are with as his they be at one
have this from or had by hot word but what some we can out other were all there when up
use your how said an each she which do their time if will way about many then them write
would like so these her long make thing see him two has look more day could go come did
number sound no most people my over know water than call first who may down side been now
find any new work part take get place made live where after back little only round man year
came show every good me give our under name very through just form sentence great think say
help low line differ turn cause much mean before move right boy old too same tell does set
three want air well also play small end put home read hand port large spell add even land
here must big high such follow act why ask men change went light kind off need house picture
try us again animal point mother world near build self earth father river tree apple cloud
stone quiet green blue window garden music paper ocean bright""".split()

# SentencePiece token types (llama.cpp's LLAMA_TOKEN_TYPE_*).
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def vocabulary():
    """Tokens, scores, types, and which tokens the model may generate.

    Byte tokens make any input text tokenizable (SentencePiece byte fallback); the model
    only generates whole words and a few punctuation marks, so its output stays valid
    UTF-8 and readable-looking, and never ends early on an end-of-turn token.
    """
    tokens = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("<|im_start|>", CONTROL), ("<|im_end|>", CONTROL)]
    tokens += [(f"<0x{b:02X}>", BYTE) for b in range(256)]
    tokens += [(chr(c), NORMAL) for c in range(33, 127)] + [("\u2581", NORMAL)]
    tokens += [("\u2581" + w, NORMAL) for w in dict.fromkeys(WORDS)]
    texts = [t for t, _ in tokens]
    scores = [0.0 if t.startswith("\u2581") and len(t) > 1 else -1.0 for t in texts]
    types = [k for _, k in tokens]
    generated = [t.startswith("\u2581") and len(t) > 1 or t in ".,!?" for t in texts]
    return texts, scores, types, np.array(generated)


def write_gguf(path: Path, name: str, seed: int) -> int:
    """Writes one random-weight model; returns its parameter count."""
    rng = np.random.default_rng(seed)
    texts, scores, types, generated = vocabulary()
    n_vocab = len(texts)

    def rand(rows, cols, scale):
        return (rng.standard_normal((rows, cols)) * scale).astype(np.float32)

    # Dimension 0 of the residual stream is held at a constant positive value: the
    # embeddings set it, no layer writes to it. The output matrix reads it with a large
    # negative weight for tokens that must never be generated, which works as a bias.
    embd = rand(n_vocab, N_EMBD, 1.0)
    embd[:, 0] = 1.0
    output = rand(n_vocab, N_EMBD, 1.0 / np.sqrt(N_EMBD))
    output[:, 0] = np.where(generated, 0.0, -40.0)

    tensors = {"token_embd.weight": embd, "output.weight": output,
               "output_norm.weight": np.ones(N_EMBD, np.float32)}
    for i in range(N_LAYER):
        block = {
            "attn_norm": np.ones(N_EMBD, np.float32),
            "ffn_norm": np.ones(N_EMBD, np.float32),
            "attn_q": rand(N_EMBD, N_EMBD, N_EMBD ** -0.5),
            "attn_k": rand(N_EMBD, N_EMBD, N_EMBD ** -0.5),
            "attn_v": rand(N_EMBD, N_EMBD, N_EMBD ** -0.5),
            "attn_output": rand(N_EMBD, N_EMBD, N_EMBD ** -0.5),
            "ffn_gate": rand(N_FF, N_EMBD, N_EMBD ** -0.5),
            "ffn_up": rand(N_FF, N_EMBD, N_EMBD ** -0.5),
            "ffn_down": rand(N_EMBD, N_FF, N_FF ** -0.5),
        }
        block["attn_output"][0] = 0.0  # keep residual dimension 0 constant (see above)
        block["ffn_down"][0] = 0.0
        tensors.update({f"blk.{i}.{k}.weight": v for k, v in block.items()})

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(texts)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(texts.index("<|im_end|>"))
    writer.add_add_bos_token(False)  # as Qwen: the chat template carries the structure
    writer.add_chat_template(CHAT_TEMPLATE)
    for tensor_name, value in tensors.items():
        writer.add_tensor(tensor_name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return sum(v.size for v in tensors.values())


def add_blob(store: Path, data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (store / "blobs" / digest.replace(":", "-")).write_bytes(data)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def main(store: Path) -> None:
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    for name, seed in MODELS.items():
        repo, tag = name.split(":")
        gguf_path = store / "model.gguf.tmp"
        n_params = write_gguf(gguf_path, name, seed)
        layers = [
            add_blob(store, gguf_path.read_bytes(), "application/vnd.ollama.image.model"),
            add_blob(store, (OLLAMA_THINKING_TEMPLATE if name in THINKING_MODELS else OLLAMA_TEMPLATE).encode(),
                     "application/vnd.ollama.image.template"),
            add_blob(store, json.dumps({"stop": ["<|im_start|>", "<|im_end|>"]}).encode(),
                     "application/vnd.ollama.image.params"),
        ]
        gguf_path.unlink()
        config = {"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                  "model_type": f"{n_params / 1e6:.2f}M", "file_type": "F32",
                  "architecture": "amd64", "os": "linux",
                  # Not in Ollama's config blobs (it reads the GGUF): what /api/show reports.
                  "model_info": {"general.architecture": "llama", "general.parameter_count": n_params,
                                 "llama.context_length": N_CTX, "llama.embedding_length": N_EMBD,
                                 "llama.block_count": N_LAYER, "llama.attention.head_count": N_HEAD}}
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": add_blob(store, json.dumps(config).encode(),
                               "application/vnd.docker.container.image.v1+json"),
            "layers": layers,
        }
        path = store / "manifests" / "registry.ollama.ai" / "library" / repo / tag
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest))
        print(f"{name}: {n_params} parameters, {layers[0]['size']} bytes, {layers[0]['digest']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
