"""A real PostgreSQL server for the tests of the shared store, started once per session
from Debian's binaries (/usr/lib/postgresql/15/bin; ``make postgres`` installs them). A
missing binary fails these tests with the install hint: they never skip."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from mlwright.testing.postgres import PostgresServer

_names = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A new, empty database of the session's server (its own engine, its own tables)."""
    return postgres.create_database(f"test_{next(_names)}")
