"""Hold a function up, as a read over a long history would be, until the test lets it go."""

from __future__ import annotations

import threading
from types import ModuleType

import pytest


def hold_up(monkeypatch: pytest.MonkeyPatch, module: ModuleType, name: str) -> threading.Event:
    """Make `module.name` wait (at most 10 s) until the returned event is set, then run as before."""
    release = threading.Event()
    original = getattr(module, name)

    def held(*args: object, **kwargs: object) -> object:
        release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    return release
