"""Resources shared by every domain: the Compliance API client and the warehouse location.
The API key is an `EnvVar`: Dagster resolves it at run time and never shows its value in run config or the UI.
"""


from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from pipeline.compliance_api import ComplianceClient
from pipeline.config import API_KEY_ENV, Settings
from pipeline.warehouse.connection import open_warehouse


class ComplianceAPIResource(dg.ConfigurableResource):
    """Claude Compliance API (or the bundled simulator, by base URL)."""

    api_key: str
    base_url: str
    timeout_seconds: float = 30.0
    max_retries: int = 8
    requests_per_minute: int = 600

    def client(self) -> ComplianceClient:
        return ComplianceClient(api_key=self.api_key, base_url=self.base_url, timeout=self.timeout_seconds,
                                max_retries=self.max_retries, requests_per_minute=self.requests_per_minute)


class WarehouseResource(dg.ConfigurableResource):
    """The working DuckDB file. Steps that open it must run in the pool `duckdb` (see dagster.yaml)."""

    path: str
    memory_limit: str = "256MB"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.path, memory_limit=self.memory_limit) as conn:
            yield conn


class GeoIPResource(dg.ConfigurableResource):
    """GeoLite2/GeoIP2 City database; empty path = the bundled (2018) GeoLite2-City."""

    city_db_path: str = ""


def build_resources(settings: Settings | None = None) -> dict:
    import os

    settings = settings or Settings.from_env()
    return {
        "compliance_api": ComplianceAPIResource(
            api_key=dg.EnvVar(API_KEY_ENV),
            base_url=settings.base_url,
            timeout_seconds=float(os.environ.get("COMPLIANCE_API_TIMEOUT_SECONDS", 30)),
            max_retries=int(os.environ.get("COMPLIANCE_API_MAX_RETRIES", 8)),
            requests_per_minute=int(os.environ.get("COMPLIANCE_API_REQUESTS_PER_MINUTE", 600)),
        ),
        "warehouse": WarehouseResource(path=str(settings.warehouse_path), memory_limit=settings.duckdb_memory_limit),
        "geoip": GeoIPResource(city_db_path=settings.geoip_city_db or ""),
    }
