"""Shared by all tests: figures measured along the way, printed at the end of the run."""

import pytest

FIGURES: dict[str, str] = {}


@pytest.fixture(scope="session")
def figures() -> dict[str, str]:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures measured")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
