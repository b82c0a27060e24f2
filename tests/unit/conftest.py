"""Shared by the unit tests: a clean environment, so no admin's .env leaks into a test."""

import pytest

from aihub.settings import SETTINGS


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Unset every aihub setting: each test starts from the defaults and sets what it needs."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
