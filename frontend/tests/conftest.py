from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def login(world: Any) -> Callable[[str | None], Client]:
    """A page client signed in as one of the cast (None: signed out)."""

    def make(name: str | None) -> Client:
        client = Client()
        if name is not None:
            client.force_login(world.users[name])
        return client

    return make
