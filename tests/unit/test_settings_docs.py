"""aihub.settings_docs: .env.example and the README's table, written from a settings table."""

import pytest

from aihub import settings_docs
from aihub.settings import Setting, port

TABLE = (
    Setting("HUB_THING", "8000", port, "a port | with a pipe", heading="First group"),
    Setting("ADMIN_PASSWORD", "", str, "a generated secret; empty: generated on first start", secret=True,
            note="A long note that goes on and on, well past the width of one line of the file, so that it"
                 " has to be wrapped onto a second comment line."),
    Setting("SOME_API_KEY", "", str, "a key nobody generates", secret=True, heading="Second group"),
    Setting("SOME_URL", "", str, "an optional URL"),
)

README = """# Title

Text before.

{start}
an old table
{end}

Text after.
"""


def readme(start=settings_docs.TABLE_START, end=settings_docs.TABLE_END):
    return README.format(start=start, end=end)


def test_env_example_lists_each_row_under_its_heading_with_help_note_and_default():
    text = settings_docs.env_example(TABLE)
    assert text.startswith(settings_docs.ENV_EXAMPLE_PREAMBLE)
    assert text[len(settings_docs.ENV_EXAMPLE_PREAMBLE):] == """
# ===== First group =====

# a port | with a pipe
HUB_THING=8000
# a generated secret; empty: generated on first start
# A long note that goes on and on, well past the width of one line of the file, so that
# it has to be wrapped onto a second comment line.
ADMIN_PASSWORD=

# ===== Second group =====

# a key nobody generates
SOME_API_KEY=
# an optional URL
SOME_URL=
"""


def test_readme_table_has_one_table_per_heading_with_defaults_shown_for_admins():
    assert settings_docs.readme_table(TABLE) == """**First group**

| variable | default | meaning |
| --- | --- | --- |
| `HUB_THING` | `8000` | a port \\| with a pipe |
| `ADMIN_PASSWORD` | generated | a generated secret; empty: generated on first start. A long note that goes on and on, well past the width of one line of the file, so that it has to be wrapped onto a second comment line. |

**Second group**

| variable | default | meaning |
| --- | --- | --- |
| `SOME_API_KEY` | empty | a key nobody generates |
| `SOME_URL` | empty | an optional URL |"""


def test_only_the_text_between_the_markers_is_replaced():
    new = settings_docs.with_table(readme(), "| the | new | table |")
    assert new == readme().replace("an old table", "| the | new | table |")
    assert settings_docs.with_table(new, "| the | new | table |") == new


@pytest.mark.parametrize("text", [
    README.format(start="", end=settings_docs.TABLE_END),
    README.format(start=settings_docs.TABLE_START, end=""),
    README.format(start=settings_docs.TABLE_END, end=settings_docs.TABLE_START),
    README.format(start=settings_docs.TABLE_START * 2, end=settings_docs.TABLE_END),
])
def test_missing_or_misplaced_markers_are_one_clear_error(text):
    with pytest.raises(settings_docs.DocsError, match="README.md needs the lines <!-- settings-table:start"):
        settings_docs.with_table(text, "table")


@pytest.mark.parametrize("table, problem", [
    (TABLE + (Setting("SOME_URL", "", str, "again"),), "SOME_URL is in the settings table twice"),
    (TABLE + (Setting("NEW_ONE", "", str, "two\nlines"),), "NEW_ONE: its help holds a line break"),
    (TABLE + (Setting("NEW_ONE", "", str, "ok", note="a\nb"),), "NEW_ONE: its note holds a line break"),
    (TABLE + (Setting("NEW_ONE", "", str, ""),), "NEW_ONE has no help line"),
    (TABLE[1:], "ADMIN_PASSWORD, the first setting, has no heading"),
])
def test_a_table_that_would_give_broken_docs_is_refused_naming_the_setting(table, problem):
    for generate in (settings_docs.env_example, settings_docs.readme_table):
        with pytest.raises(settings_docs.DocsError, match=problem):
            generate(table)


def test_a_row_added_without_heading_joins_the_group_above():
    added = TABLE + (Setting("ADDED_BY_HAND", "x", str, "a new setting"),)
    assert settings_docs.env_example(added).endswith("# an optional URL\nSOME_URL=\n# a new setting\nADDED_BY_HAND=x\n")


@pytest.fixture
def checkout(tmp_path):
    """A checkout whose .env.example and README table are stale."""
    (tmp_path / ".env.example").write_text("OLD=1\n")
    (tmp_path / "README.md").write_text(readme())
    return tmp_path


def test_check_names_each_stale_file_and_the_command_and_changes_nothing(checkout, capsys):
    assert settings_docs.main(["--check"], checkout) == 1
    assert capsys.readouterr().err.splitlines() == [
        f".env.example is not what hub/aihub/settings.py gives: run `{settings_docs.COMMAND}`",
        f"README.md is not what hub/aihub/settings.py gives: run `{settings_docs.COMMAND}`"]
    assert (checkout / ".env.example").read_text() == "OLD=1\n"


def test_the_command_rewrites_both_then_check_passes(checkout, capsys):
    assert settings_docs.main([], checkout) == 0
    assert (checkout / ".env.example").read_text() == settings_docs.env_example()
    text = (checkout / "README.md").read_text()
    assert "an old table" not in text and settings_docs.readme_table() in text
    assert text.startswith("# Title\n\nText before.\n\n") and text.endswith("\n\nText after.\n")
    assert settings_docs.main(["--check"], checkout) == 0
    assert settings_docs.main([], checkout) == 0
    assert capsys.readouterr().out.count("wrote") == 2  # the second run had nothing to write


def test_a_readme_without_markers_is_one_line_and_nothing_is_written(checkout, capsys):
    (checkout / "README.md").write_text("# no markers\n")
    assert settings_docs.main([], checkout) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("aihub.settings_docs: README.md needs the lines")
    assert (checkout / ".env.example").read_text() == "OLD=1\n"


def test_unknown_arguments_print_the_usage(checkout, capsys):
    assert settings_docs.main(["--write"], checkout) == 2
    assert settings_docs.COMMAND in capsys.readouterr().err
