"""Chat with your own documents (seed 001), end to end, with no configuration.

A student writes a file into their home, and in the chat panel `/learn notes` indexes
it and `/ask ...` answers from it: the default embedding model (AI_DEFAULT_EMBEDDINGS_MODEL,
nomic-embed-text, pulled by default) through the gateway to the local Ollama.

What this proves, and what it cannot: the Ollama stand-in's models have random
weights, so the /ask answer is gibberish and its text cannot be judged. The test
checks instead (1) that the embedding model was pulled and is what the chat panel
starts with, (2) that /learn put the document's text into the student's index, in
their home volume, (3) that the index finds the document's passage for the question
(the retrieval /ask does, run in the student's container with the same provider),
(4) that the embeddings went through the gateway, metered in the ledger, and (5)
that after a respawn /ask still embeds the question against the saved index (with no
index jupyter-ai embeds nothing) and answers.
"""

import json

from .stack import run

DOCUMENT = (
    "# Silicon Valley Bank\n\n"
    "Silicon Valley Bank collapsed on 10 March 2023 after a bank run by its depositors.\n"
)
QUESTION = "When did Silicon Valley Bank collapse?"
INDEX_DIR = "/home/jovyan/.local/share/jupyter/jupyter_ai/indices"

# Loads the student's index with the chat panel's embedding provider and searches it,
# as /ask's retriever does (jupyter_ai.chat_handlers.learn).
SEARCH = f"""
import json, os
from langchain_community.vectorstores import FAISS
from aihub_providers.embeddings import EMBEDDINGS_PROVIDERS
provider, model = os.environ["AI_DEFAULT_EMBEDDINGS_MODEL"].split(":", 1)
index = FAISS.load_local({INDEX_DIR!r}, EMBEDDINGS_PROVIDERS[provider](model_id=model),
                         index_name="default", allow_dangerous_deserialization=True)
docs = index.similarity_search({QUESTION!r}, k=1)
print(json.dumps([[d.page_content, d.metadata["path"]] for d in docs]))
"""


def embeddings_rows(stack, username: str) -> list[str]:
    """The student's embeddings calls in the gateway's ledger, as provider|model|status."""
    return stack.psql(
        "SELECT provider, model, status FROM ai_usage "
        f"WHERE username = '{username}' AND endpoint = 'embeddings' ORDER BY id"
    ).split()


def in_container(stack, username: str, *command: str) -> str:
    return run(["docker", "exec", "-u", "jovyan", stack.user_container(username), *command]).stdout


def test_the_embedding_model_is_pulled_and_preselected(stack, server):
    assert "nomic-embed-text" in stack.compose("exec", "-T", "ollama", "ollama", "list").stdout
    config = server.api("GET", server.server_path + "/api/ai/config").json()
    assert config["embeddings_provider_id"] == "ollama:nomic-embed-text"


def test_learn_then_ask_answers_from_the_students_file(stack, server):
    saved = server.api("PUT", server.server_path + "/api/contents/notes", json={"type": "directory"})
    assert saved.status_code in (200, 201), saved.text
    saved = server.api("PUT", server.server_path + "/api/contents/notes/bank.md",
                       json={"type": "file", "format": "text", "content": DOCUMENT})
    assert saved.status_code in (200, 201), saved.text
    before = len(embeddings_rows(stack, server.username))

    learned = server.chat("/learn notes", timeout=180)
    assert "I have learned documents" in learned, learned

    # the index is in the home volume, and holds the document's text
    listing = in_container(stack, server.username, "ls", INDEX_DIR)
    assert "default.faiss" in listing and "default.pkl" in listing, listing
    [[passage, path]] = json.loads(in_container(stack, server.username, "python", "-c", SEARCH))
    assert "collapsed on 10 March 2023" in passage and path.endswith("notes/bank.md")

    # the document's chunk was embedded through the gateway, with the default model
    rows = embeddings_rows(stack, server.username)[before:]
    assert rows and set(rows) == {"ollama|nomic-embed-text|ok"}, rows

    answer = server.chat("/ask " + QUESTION, timeout=180)
    assert answer.strip() and "Sorry" not in answer and "error" not in answer.lower()[:200], answer
    # the answer quotes the passage it was given, under its path
    assert "collapsed on 10 March 2023" in answer.split("**Sources**")[1] and "`notes/bank.md`" in answer, answer


def test_the_index_survives_a_respawn(stack, server):
    server.stop_server()
    server.start_server()
    server.wait_until_ready()
    server.open_lab()
    before = len(embeddings_rows(stack, server.username))
    answer = server.chat("/ask " + QUESTION, timeout=180)
    assert answer.strip() and "Sorry" not in answer, answer
    # jupyter-ai embeds the question only when it loaded a saved index
    assert len(embeddings_rows(stack, server.username)) > before
