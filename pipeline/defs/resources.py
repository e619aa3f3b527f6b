"""Resources shared by every domain: the Compliance API client and the warehouse location.
Their defaults come from the validated settings (pipeline.settings). The API key is read from the environment by the
client itself: it is in no resource field, run config or UI.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb

from pipeline.compliance_api import ComplianceClient
from pipeline.compliance_api.transport import check_base_url
from pipeline.settings import PipelineSettings, load_settings
from pipeline.warehouse.connection import open_warehouse

_DEFAULTS = PipelineSettings.model_fields  # one default per setting: the settings' own


class ComplianceAPIResource(dg.ConfigurableResource):
    """Claude Compliance API (or the bundled simulator, by base URL).

    The key is no field: the client reads it from ANTHROPIC_COMPLIANCE_ACCESS_KEY when it is made, so run config can
    neither set it nor show it. `base_url` may be changed from run config only to an allowed host (the host of
    COMPLIANCE_API_BASE_URL or one listed in COMPLIANCE_API_ALLOWED_HOSTS): the key never leaves for another one.
    """

    base_url: str = ""  # empty: COMPLIANCE_API_BASE_URL
    timeout_seconds: float = _DEFAULTS["api_timeout_seconds"].default
    max_retries: int = _DEFAULTS["api_max_retries"].default
    requests_per_minute: int = _DEFAULTS["api_requests_per_minute"].default

    def client(self) -> ComplianceClient:
        base_url = check_base_url(self.base_url or load_settings().api_base_url)
        return ComplianceClient(base_url=base_url, timeout=self.timeout_seconds, max_retries=self.max_retries,
                                requests_per_minute=self.requests_per_minute)


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


def build_resources(settings: PipelineSettings | None = None) -> dict:
    settings = settings or load_settings()
    return {
        "compliance_api": ComplianceAPIResource(
            base_url=settings.api_base_url,
            timeout_seconds=settings.api_timeout_seconds,
            max_retries=settings.api_max_retries,
            requests_per_minute=settings.api_requests_per_minute,
        ),
        "warehouse": WarehouseResource(path=str(settings.warehouse_path), memory_limit=settings.duckdb_memory_limit),
        "geoip": GeoIPResource(city_db_path=str(settings.geoip_city_db) if settings.geoip_city_db else ""),
    }
