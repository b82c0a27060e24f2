"""`docker compose up -d --wait`, the README's start command, fails when the stack does not
come up and points at one line naming what to fix; it succeeds on a good stack."""

import pytest

# What the README tells admins to run; the timeout only bounds a broken test run.
UP_WAIT = ("up", "-d", "--wait", "--wait-timeout", "300")


def up_wait(stack, settings: dict[str, str]):
    stack.write_env(settings)
    return stack.compose(*UP_WAIT, check=False, timeout=600)


def last_log_line(stack, service: str) -> str:
    return stack.compose("logs", "--no-log-prefix", service).stdout.strip().splitlines()[-1]


@pytest.fixture
def restored(stack):
    """The stack with the tests' own settings again afterwards, healthy, for the tests after."""
    yield stack
    result = up_wait(stack, stack.settings)
    assert result.returncode == 0, result.stderr[-3000:]
    stack.wait_healthy()


def test_up_wait_succeeds_on_a_good_stack(restored):
    result = up_wait(restored, restored.settings)
    assert result.returncode == 0, result.stderr[-3000:]
    assert restored.health() == "healthy"
    assert last_log_line(restored, "ollama-pull") == "ollama-pull: every model is present; idle until the stack stops"


def test_a_bad_setting_fails_up_with_one_line_naming_it(restored):
    result = up_wait(restored, {**restored.settings, "USER_MEM_LIMIT": "lots"})
    assert result.returncode != 0
    assert "secrets" in result.stderr.strip().splitlines()[-1], result.stderr[-3000:]
    assert last_log_line(restored, "secrets") == (
        "aihub: configuration error: USER_MEM_LIMIT='lots' is not a memory size; use a number with K, M or G,"
        " e.g. 2G (0 = no limit); set it in .env")
    # Without --wait too: nothing starts with a wrong setting.
    assert restored.compose("up", "-d", check=False).returncode != 0


def test_a_model_that_cannot_be_pulled_fails_up_wait_with_one_line_naming_it(restored):
    result = up_wait(restored, {**restored.settings, "OLLAMA_PULL_MODELS": "no-such-model:1"})
    assert result.returncode != 0
    assert "ollama-pull" in result.stderr.strip().splitlines()[-1], result.stderr[-3000:]
    line = last_log_line(restored, "ollama-pull")
    assert line.startswith("ollama-pull: error: cannot pull no-such-model:1: "), line
    assert line.endswith("; check OLLAMA_PULL_MODELS in .env"), line
