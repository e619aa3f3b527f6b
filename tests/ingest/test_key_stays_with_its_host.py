"""The key stays with its host (issue #12): a run whose config points the API resource at another server fails
before any request, and that server never sees the key; the key is in no field, repr or run config."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest
from dagster._core.errors import DagsterInvalidConfigError

from pipeline.compliance_api import ComplianceClient, ConfigurationError
from pipeline.defs.ingest.assets import raw_activities
from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
from simulator.process import SimulatorProcess
from tests.support.sim import FULL_KEY, stats


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict] = []

    def do_GET(self):  # noqa: N802 - http.server API
        _Recorder.seen.append(dict(self.headers))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"data":[],"has_more":false,"first_id":null,"last_id":null}')

    def log_message(self, *args):
        pass


@pytest.fixture
def other_host():
    """An HTTP server on another loopback address (127.0.0.2: not an allowed host) that records what it receives."""
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.2", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_run_config_pointing_the_api_at_another_host_never_sends_it_the_key(tmp_path, other_host):
    args = ["--start", "2026-11-03T00:00:00Z", "--days", "1", "--volume", "500", "--rate-limit", "0"]
    with SimulatorProcess(args) as sim:
        resources = {"compliance_api": ComplianceAPIResource(base_url=sim.base_url),
                     "warehouse": WarehouseResource(path=str(tmp_path / "w.duckdb")), "geoip": GeoIPResource()}
        result = dg.materialize([raw_activities], resources=resources, partition_key="2026-11-03-10:00",
                                raise_on_error=False,
                                run_config={"resources": {"compliance_api": {"config": {"base_url": other_host}}}})
        sim_requests = stats(sim.base_url)["requests_total"]
        # the key cannot be given in run config at all
        with pytest.raises(DagsterInvalidConfigError):
            dg.materialize([raw_activities], resources=resources, partition_key="2026-11-03-10:00",
                           run_config={"resources": {"compliance_api": {"config": {"api_key": "sk-ant-api01-x"}}}})
        # the same run with the configured host succeeds (the refusal above is about the host only)
        assert dg.materialize([raw_activities], resources=resources, partition_key="2026-11-03-10:00").success
    assert not result.success
    message = str(result.failure_data_for_node("raw__activities").error)
    assert "COMPLIANCE_API_ALLOWED_HOSTS" in message and FULL_KEY not in message
    assert _Recorder.seen == [], "the other host received a request"
    assert sim_requests == 0


def test_key_in_no_repr_and_plain_http_only_to_loopback():
    resource = ComplianceAPIResource(base_url="http://127.0.0.1:1")
    with resource.client() as client:
        assert FULL_KEY not in repr(resource) + str(resource) + repr(client) + str(client.api_key)
    assert "api_key" not in ComplianceAPIResource.model_fields
    with pytest.raises(ConfigurationError, match="plain http"):
        ComplianceClient(api_key=FULL_KEY, base_url="http://api.example.com")
