import pytest

from tests.support import postgres


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """DAGSTER_PG_URL of a real PostgreSQL 15 started by deploy/postgres.sh for this session."""
    if not postgres.available():
        pytest.skip("PostgreSQL 15 is not installed and cannot be installed (not root): apt-get install postgresql-15")
    with postgres.postgres_server() as url:
        yield url
