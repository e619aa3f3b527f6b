import pytest

from tests.transform.marts_build import MartsBuild, marts_build


@pytest.fixture(scope="session")
def built() -> MartsBuild:
    """The shared warehouse (tests/transform/marts_build.py): built once per pytest process."""
    return marts_build()
