"""Failure paths of ComplianceClient.request: what is retried, how long it waits, and the typed errors it raises."""

from __future__ import annotations

import logging
import pickle
import socket
import threading
import time

import httpx
import pytest

from pipeline.compliance_api import (
    AuthenticationError,
    BadRequestError,
    ComplianceClient,
    ConfigurationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestBudget,
    RetriesExhaustedError,
    ServerError,
    TransportError,
)
from tests.client.conftest import KEY, FakeSleep, error_body, ok, scripted

PATH = "/v1/compliance/organizations"


def err(status: int, error_type: str, message: str, request_id: str = "req_err", **headers: str) -> httpx.Response:
    headers.setdefault("request-id", request_id)
    return httpx.Response(status, json=error_body(error_type, message, request_id), headers=headers)


# -- 429 -----------------------------------------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(make_client):
    handler = scripted(err(429, "rate_limit_error", "rate limit of 600 exceeded", **{"retry-after": "1"}), ok())
    # a real budget with a real sleep: the wait must actually happen
    client = make_client(handler, budget=RequestBudget(None))
    started = time.monotonic()
    assert client.request("GET", PATH).data == {"ok": True}
    assert time.monotonic() - started >= 1.0
    assert handler.count == 2


def test_429_without_retry_after_backs_off_exponentially_with_full_jitter(make_client):
    budget_sleep = FakeSleep()
    handler = scripted(*[err(429, "rate_limit_error", "slow down")] * 6, ok())
    client = make_client(handler, backoff_initial=1.0, backoff_max=4.0, budget=RequestBudget(None, sleep=budget_sleep))
    client.request("GET", PATH)
    assert handler.count == 7
    ceilings = [1, 2, 4, 4, 4, 4]
    assert len(budget_sleep.calls) == 6
    for wait, ceiling in zip(budget_sleep.calls, ceilings):
        assert 0 <= wait <= ceiling


def test_429s_do_not_use_up_max_retries_but_have_a_cap(make_client):
    handler = scripted(*[err(429, "rate_limit_error", "slow down", **{"retry-after": "0"})] * 5, ok())
    assert make_client(handler, max_retries=1).request("GET", PATH).data == {"ok": True}
    assert handler.count == 6

    always = scripted(err(429, "rate_limit_error", "slow down", **{"retry-after": "0"}))
    with pytest.raises(RetriesExhaustedError) as info:
        make_client(always, max_rate_limit_retries=3).request("GET", PATH)
    assert always.count == 4
    assert isinstance(info.value.last_error, RateLimitError)
    assert info.value.__cause__ is info.value.last_error
    assert info.value.status_code == 429


def test_429_pauses_the_whole_process_budget(make_client):
    budget = RequestBudget(None, sleep=FakeSleep(), clock=lambda: 100.0)
    handler = scripted(err(429, "rate_limit_error", "x", **{"retry-after": "7"}), ok())
    make_client(handler, budget=budget).request("GET", PATH)
    # another thread (or client sharing the budget) now also waits out the retry-after
    assert budget.acquire() == pytest.approx(7.0)


# -- 5xx -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status,error_type", [(500, "api_error"), (502, "api_error"), (503, "overloaded_error"),
                                               (504, "timeout_error"), (529, "overloaded_error")])
def test_transient_5xx_retried_then_succeeds(make_client, status, error_type):
    handler = scripted(err(status, error_type, "try again"), err(status, error_type, "try again"), ok())
    assert make_client(handler).request("GET", PATH).data == {"ok": True}
    assert handler.count == 3


def test_5xx_retries_are_bounded_and_wrap_the_last_cause(make_client):
    handler = scripted(err(503, "overloaded_error", "Overloaded. Try again shortly.", request_id="req_last"))
    sleep = FakeSleep()
    with pytest.raises(RetriesExhaustedError) as info:
        make_client(handler, max_retries=3, sleep=sleep).request("GET", PATH)
    assert handler.count == 4
    assert len(sleep.calls) == 3
    exc = info.value
    assert isinstance(exc.last_error, ServerError) and exc.attempts == 4
    assert exc.request_id == "req_last" and "req_last" in str(exc)
    assert "Overloaded. Try again shortly." in str(exc)


def test_backoff_doubles_from_initial_to_max(make_client):
    handler = scripted(err(502, "api_error", "bad gateway"))
    sleep = FakeSleep()
    with pytest.raises(RetriesExhaustedError):
        make_client(handler, max_retries=6, backoff_initial=1.0, backoff_max=8.0, sleep=sleep).request("GET", PATH)
    for wait, ceiling in zip(sleep.calls, [1, 2, 4, 8, 8, 8]):
        assert 0 <= wait <= ceiling
    assert len(sleep.calls) == 6


def test_500_with_should_retry_false_is_not_retried(make_client):
    handler = scripted(err(500, "api_error", "deterministic failure", **{"x-should-retry": "false"}), ok())
    with pytest.raises(ServerError) as info:
        make_client(handler).request("GET", PATH)
    assert handler.count == 1
    assert info.value.status_code == 500 and "deterministic failure" in str(info.value)


def test_retry_after_on_503_is_honoured(make_client):
    sleep = FakeSleep()
    handler = scripted(err(503, "overloaded_error", "busy", **{"retry-after": "3"}), ok())
    make_client(handler, sleep=sleep).request("GET", PATH)
    assert sleep.calls == [3.0]


# -- bodies and transport ------------------------------------------------------------------------------------------


def test_truncated_json_is_retried(make_client):
    truncated = httpx.Response(200, content=b'{"data": [{"id": "activity_1", "ty', headers={"request-id": "req_t"})
    handler = scripted(truncated, ok({"data": [], "has_more": False}))
    assert make_client(handler).request("GET", PATH).data == {"data": [], "has_more": False}
    assert handler.count == 2


def test_non_json_body_retried_then_exhausted(make_client):
    handler = scripted(httpx.Response(200, content=b"<html>proxy error</html>", headers={"request-id": "req_h"}))
    with pytest.raises(RetriesExhaustedError) as info:
        make_client(handler, max_retries=2).request("GET", PATH)
    assert handler.count == 3
    assert isinstance(info.value.last_error, InvalidResponseError)
    assert info.value.request_id == "req_h"


@pytest.mark.parametrize("exc", [httpx.ConnectError("connection refused"), httpx.ReadTimeout("timed out"),
                                 httpx.RemoteProtocolError("peer closed connection without sending complete body"),
                                 httpx.ReadError("connection reset by peer")])
def test_transport_errors_are_retried(make_client, exc):
    handler = scripted(exc, ok())
    assert make_client(handler).request("GET", PATH).data == {"ok": True}
    assert handler.count == 2


def test_transport_error_exhaustion_is_typed(make_client):
    handler = scripted(httpx.ConnectError("connection refused"))
    with pytest.raises(RetriesExhaustedError) as info:
        make_client(handler, max_retries=2).request("GET", PATH)
    assert handler.count == 3
    assert isinstance(info.value.last_error, TransportError)
    assert info.value.last_error.kind == "ConnectError"


def _half_body_server() -> tuple[socket.socket, list[int]]:
    """Answers every connection with a Content-Length of 1000 and 20 bytes, then closes: a peer dying mid-body."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    hits = [0]

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                hits[0] += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                             b'{"data": [{"id": "a')

    threading.Thread(target=serve, daemon=True).start()
    return srv, hits


def test_peer_closing_mid_body_over_real_http_is_retried():
    srv, hits = _half_body_server()
    try:
        with ComplianceClient(KEY, f"http://127.0.0.1:{srv.getsockname()[1]}", max_retries=2, backoff_initial=0.001,
                              backoff_max=0.001, budget=RequestBudget(None)) as client:
            with pytest.raises(RetriesExhaustedError) as info:
                client.request("GET", PATH)
    finally:
        srv.close()
    assert hits[0] == 3
    assert isinstance(info.value.last_error, TransportError)
    assert info.value.last_error.kind == "RemoteProtocolError"


# -- no retry on client errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status,error_type,cls,message", [
    (400, "invalid_request_error", BadRequestError, "Invalid `after_id`. No activity found for `after_id` \"x\""),
    (401, "authentication_error", AuthenticationError, "The API key provided is invalid or has been revoked."),
    (403, "permission_error", PermissionDeniedError,
     "Missing required scopes. Got: ['read:compliance_user_data'] Needed: ['read:compliance_activities']"),
    (404, "not_found_error", NotFoundError, "Chat claude_chat_x not found."),
    (409, "conflict_error", ConflictError, "The \"claude_proj_1\" project cannot be deleted as it has chats attached."),
])
def test_client_errors_raise_typed_errors_without_retry(make_client, status, error_type, cls, message):
    handler = scripted(err(status, error_type, message, request_id=f"req_{status}"), ok())
    with pytest.raises(cls) as info:
        make_client(handler).request("GET", PATH)
    assert handler.count == 1
    exc = info.value
    assert exc.status_code == status and exc.error_type == error_type
    assert exc.api_message == message and message in str(exc)
    assert exc.request_id == f"req_{status}" and f"req_{status}" in str(exc)
    assert exc.method == "GET" and exc.path == PATH


def test_request_id_taken_from_body_when_header_missing(make_client):
    response = httpx.Response(404, json=error_body("not_found_error", "Role not found.", "req_body_only"))
    with pytest.raises(NotFoundError) as info:
        make_client(scripted(response)).request("GET", PATH)
    assert info.value.request_id == "req_body_only"


def test_403_missing_scope_is_parsed_and_explained(make_client):
    message = "Missing required scopes. Got: ['read:compliance_user_data'] Needed: ['read:compliance_activities']"
    with pytest.raises(PermissionDeniedError) as info:
        make_client(scripted(err(403, "permission_error", message))).request("GET", "/v1/compliance/activities")
    exc = info.value
    assert exc.granted_scopes == ["read:compliance_user_data"]
    assert exc.missing_scopes == ["read:compliance_activities"]
    assert "lacks scope read:compliance_activities" in str(exc)
    assert "ANTHROPIC_COMPLIANCE_ACCESS_KEY" in str(exc)


def test_403_without_scope_list_guesses_scope_from_endpoint(make_client):
    handler = scripted(err(403, "permission_error", "Admin API keys cannot access this endpoint."))
    with pytest.raises(PermissionDeniedError) as info:
        make_client(handler, api_key="sk-ant-admin01-" + "abcdefghijklmnopqrstuvwxyz").request(
            "GET", "/v1/compliance/apps/chats")
    assert info.value.missing_scopes == ["read:compliance_user_data"]
    assert "Activity Feed" in str(info.value)


def test_401_says_which_env_var_to_fix(make_client):
    handler = scripted(err(401, "authentication_error", "The API key provided is invalid or has been revoked."))
    with pytest.raises(AuthenticationError) as info:
        make_client(handler).request("GET", PATH)
    assert "ANTHROPIC_COMPLIANCE_ACCESS_KEY" in str(info.value)
    assert "wrong or has been revoked" in str(info.value)


def test_errors_survive_pickling(make_client):
    message = "Missing required scopes. Got: ['a'] Needed: ['b']"
    with pytest.raises(PermissionDeniedError) as info:
        make_client(scripted(err(403, "permission_error", message))).request("GET", PATH)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is PermissionDeniedError
    assert str(copy) == str(info.value) and copy.missing_scopes == ["b"] and copy.request_id == "req_err"


# -- logging, headers, config ----------------------------------------------------------------------------------------


def test_retries_logged_at_warning_with_reason_and_wait(make_client, caplog):
    handler = scripted(err(503, "overloaded_error", "busy", request_id="req_busy", **{"retry-after": "2"}), ok())
    with caplog.at_level(logging.DEBUG, logger="pipeline.compliance_api"):
        make_client(handler).request("GET", PATH)
    warnings = [r for r in caplog.records if r.name == "pipeline.compliance_api" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    text = warnings[0].getMessage()
    assert "503" in text and "req_busy" in text and "2.00s" in text and PATH in text
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("attempt=2" in m and "200" in m and "req_ok" in m for m in debug)


def test_sends_auth_version_and_user_agent_headers(make_client):
    handler = scripted(ok())
    make_client(handler, user_agent="tests/1.0").request("GET", PATH)
    headers = handler.requests[0].headers
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["user-agent"] == "tests/1.0"
    assert "authorization" not in headers


def test_from_env_reads_key_url_and_overrides(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_COMPLIANCE_ACCESS_KEY", KEY)
    monkeypatch.setenv("COMPLIANCE_API_BASE_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("COMPLIANCE_API_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("COMPLIANCE_API_MAX_RETRIES", "3")
    monkeypatch.setenv("COMPLIANCE_API_REQUESTS_PER_MINUTE", "300")
    with ComplianceClient.from_env() as client:
        assert client.base_url == "http://127.0.0.1:9"
        assert (client.timeout, client.max_retries, client.requests_per_minute) == (2.5, 3, 300)
        assert client.budget.requests_per_minute == 300
        assert client.api_key.reveal() == KEY
    with ComplianceClient.from_env(max_retries=1) as client:
        assert client.max_retries == 1


def test_default_base_url_and_missing_key(monkeypatch):
    monkeypatch.delenv("COMPLIANCE_API_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_COMPLIANCE_ACCESS_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ANTHROPIC_COMPLIANCE_ACCESS_KEY"):
        ComplianceClient()
    with ComplianceClient(KEY) as client:
        assert client.base_url == "https://api.anthropic.com"


def test_key_with_whitespace_is_refused_without_echoing_it():
    bad = "sk-ant-api01-abc def\n"
    with pytest.raises(ConfigurationError) as info:
        ComplianceClient("sk-ant-api01-abc def")
    assert "abc def" not in str(info.value) and bad.strip() not in repr(info.value)
