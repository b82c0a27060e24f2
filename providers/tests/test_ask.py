"""/ask's sources: the passages quoted under their paths (aihub_providers.ask)."""

from langchain_core.documents import Document

from aihub_providers.ask import QUOTE_CHARS, quote, sources_section


def test_each_passage_is_quoted_under_its_path_relative_to_the_home():
    documents = [Document(page_content="Line one.\n\nLine  two.", metadata={"path": "/home/jovyan/notes/a.md"}),
                 Document(page_content="Elsewhere.", metadata={"path": "/data/b.txt"})]
    assert sources_section(documents, "/home/jovyan") == (
        "\n\n**Sources**\n\n`notes/a.md`\n\n> Line one\\. Line two\\.\n\n`/data/b.txt`\n\n> Elsewhere\\.")


def test_a_home_that_only_starts_the_same_is_not_the_home():
    documents = [Document(page_content="x", metadata={"path": "/home/jovyan2/a.md"})]
    assert "`/home/jovyan2/a.md`" in sources_section(documents, "/home/jovyan")


def test_a_passage_shows_as_written_not_as_markdown():
    assert quote("# Title <b>x</b> 1. *item* [a](b)") == r"> \# Title \<b\>x\</b\> 1\. \*item\* \[a\]\(b\)"


def test_no_passages_add_nothing():
    assert sources_section([], "/home/jovyan") == ""
    assert sources_section(None, "/home/jovyan") == ""


def test_a_long_passage_is_cut_at_a_word():
    quoted = quote("word " * 200)
    assert quoted.startswith("> word word") and quoted.endswith(" …")
    assert len(quoted) <= QUOTE_CHARS + 4 and "wor …" not in quoted
