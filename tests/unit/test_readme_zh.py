"""The Chinese README keeps in step with the English one: same commands, same variables,
the same code, every topic an admin and a student need, and a link from README.md."""

import re
from pathlib import Path

from aihub import settings_docs

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
README_ZH = (ROOT / "README.zh-CN.md").read_text()

# What an admin types: lines of code blocks and inline code that start like this.
COMMAND_STARTS = ("docker compose ", "python -m aihub", ".venv/bin/python ", "tests/run", ".ci/run",
                  "docker run ", "docker tag ", "docker push ", "helm ", "kubectl ", "skopeo ")
# Names in the English README that are not variables an admin sets or a student reads.
ENGLISH_ONLY_NAMES = {
    "COMPOSE_SETTINGS": "a Python table named in the maintainers' 'Adding a setting' section",
}
# Each topic the Chinese README must give a heading of its own, by a word its heading holds.
TOPIC_HEADINGS = {
    "run it": "运行",
    "log in as admin": "登录",
    "students sign up, admin approves": "审批",
    "students list and delete": "删除",
    "restarts": "重启",
    "back up and restore": "备份",
    "mirrors for slow networks": "镜像",
    "HTTPS": "HTTPS",
    "%%ai": "%%ai",
    "Ollama through the gateway": "Ollama",
    "thinking models": "思考",
    "vendors": "厂商",
    "the gateway": "网关",
    "the gateway's token policy": "令牌",
    "proxies": "代理",
    "configuration": "配置",
    "capacity": "容量",
    "sizing: one machine, Swarm or Kubernetes": "规模",
    "Kubernetes": "Kubernetes",
    "several machines: Docker Swarm": "Swarm",
    "test it": "测试",
}

CODE_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`]+)`")
VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def without_settings_table(text: str) -> str:
    """The English README less its generated table, which the Chinese one links to instead."""
    start = text.index(settings_docs.TABLE_START)
    end = text.index(settings_docs.TABLE_END) + len(settings_docs.TABLE_END)
    return text[:start] + text[end:]


def code_blocks(text: str) -> list[str]:
    return CODE_BLOCK.findall(text)


def commands(text: str) -> set[str]:
    """Every command line of the code blocks and inline code, whitespace normalised and
    trailing `# comments` dropped (they explain a command; they are not part of it)."""
    blocks = code_blocks(text)
    prose = CODE_BLOCK.sub("", text)
    candidates = [line for block in blocks for line in block.splitlines()] + INLINE_CODE.findall(prose)
    found = set()
    for candidate in candidates:
        command = " ".join(re.sub(r"\s#\s.*$", "", candidate.strip()).split())
        if command.startswith(COMMAND_STARTS):
            found.add(command)
    return found


def variables(text: str) -> set[str]:
    return set(VARIABLE.findall(text))


def headings(text: str) -> list[str]:
    prose = CODE_BLOCK.sub("", text)
    return [line.lstrip("#").strip() for line in prose.splitlines() if line.startswith("#")]


def test_readme_links_to_the_chinese_readme_at_its_top_and_back():
    top = README.split("\n## ", 1)[0]
    assert "[README.zh-CN.md](README.zh-CN.md)" in top, "README.md must link README.zh-CN.md before its first section"
    assert "[README.md](README.md)" in README_ZH.split("\n## ", 1)[0]


def test_both_readmes_give_the_same_commands():
    english, chinese = commands(without_settings_table(README)), commands(README_ZH)
    assert "docker compose exec hub python -m aihub.secrets admin-login" in english  # the parser finds them
    assert english - chinese == set(), "commands in README.md missing from README.zh-CN.md"
    assert chinese - english == set(), "commands in README.zh-CN.md that README.md does not give"


def test_both_readmes_name_the_same_variables():
    english = variables(without_settings_table(README)) - set(ENGLISH_ONLY_NAMES)
    chinese = variables(README_ZH)
    assert "AI_KEY_MODE" in english and "OLLAMA_HOST" in english  # the parser finds them
    assert english - chinese == set(), "variables in README.md missing from README.zh-CN.md"
    assert chinese - english == set(), "variables in README.zh-CN.md that README.md does not name"


def test_english_only_names_are_still_english_only():
    # A stale entry in ENGLISH_ONLY_NAMES would hide a variable missing from the translation.
    for name in ENGLISH_ONLY_NAMES:
        assert name in without_settings_table(README) and name not in README_ZH


def test_chinese_code_blocks_are_the_english_ones_byte_for_byte():
    english = set(code_blocks(README))
    for block in code_blocks(README_ZH):
        assert block in english, f"README.zh-CN.md has a code block README.md does not:\n{block}"


def test_the_chinese_readme_has_a_section_for_each_topic():
    found = headings(README_ZH)
    for topic, word in TOPIC_HEADINGS.items():
        assert any(word in heading for heading in found), f"README.zh-CN.md has no heading about {topic} ({word})"


def test_the_chinese_readme_points_to_the_configuration_table_it_does_not_copy():
    assert "](README.md#configuration)" in README_ZH and "## Configuration\n" in README
    assert "`.env.example`" in README_ZH and settings_docs.TABLE_START not in README_ZH
