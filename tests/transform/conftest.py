import duckdb
import pytest

from tests.transform.marts_build import MartsBuild, marts_build


@pytest.fixture(scope="session")
def built() -> MartsBuild:
    """The shared warehouse (tests/transform/marts_build.py): built once per pytest process."""
    return marts_build()


@pytest.fixture(scope="module")
def wh(built):
    """The shared warehouse, read-only."""
    conn = duckdb.connect(str(built.warehouse), read_only=True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def serving(built):
    """The shared serving catalog, read-only."""
    conn = duckdb.connect(str(built.serving), read_only=True)
    yield conn
    conn.close()
