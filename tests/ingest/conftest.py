import re

import pytest

from tests.support import postgres


@pytest.fixture(scope="session")
def postgres_server() -> postgres.PostgresServer:
    """A real PostgreSQL 15 started by deploy/postgres.sh for this session."""
    if not postgres.available():
        pytest.skip("PostgreSQL 15 is not installed and cannot be installed (not root): apt-get install postgresql-15")
    with postgres.postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request) -> str:
    """DAGSTER_PG_URL of a database of its own for each test: an instance never sees another test's runs (a held
    30-day backfill left in a shared database was resumed and executed by the next test's daemon)."""
    return postgres_server.database("t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[-50:])
