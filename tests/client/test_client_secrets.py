"""The API key never shows up in logs (ours, httpx's, httpcore's), exception text, reprs or formatted tracebacks."""

from __future__ import annotations

import copy
import json
import logging
import pickle
import socket
import traceback

import pytest

from pipeline.compliance_api import (
    APIKey,
    AuthenticationError,
    ComplianceAPIError,
    ComplianceClient,
    PermissionDeniedError,
    RequestBudget,
    RetriesExhaustedError,
    TransportError,
)
from tests.client.conftest import KEY, error_body

# The secret part alone too: a log line must not contain even the key minus its public prefix.
SECRET_PARTS = [KEY, KEY[len("sk-ant-api01-"):], "TESTSECRET"]


def leaks(text: str) -> bool:
    return any(part in text for part in SECRET_PARTS)


def every_rendering(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    texts.append("".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format()))
    chain = exc
    while chain is not None:
        texts += [str(chain), repr(chain), repr(vars(chain))]
        chain = chain.__cause__ or chain.__context__
    return texts


def client_for(url: str, **kw) -> ComplianceClient:
    kw.setdefault("max_retries", 2)
    return ComplianceClient(KEY, url, backoff_initial=0.001, backoff_max=0.002, budget=RequestBudget(None), **kw)


def json_response(status: int, payload: dict, **headers: str):
    return lambda method, path: (status, {"content-type": "application/json", "request-id": "req_x", **headers},
                                 json.dumps(payload).encode())


@pytest.fixture
def debug_logs(caplog):
    # Everything, including httpx and httpcore at DEBUG (httpcore logs each connection/request step).
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "pipeline.compliance_api"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return caplog


def _assert_no_leak(exc_info, caplog):
    exc = exc_info.value
    for text in every_rendering(exc):
        assert not leaks(text)
    assert not leaks(str(exc_info.getrepr(showlocals=True, style="long")))  # pytest's own traceback, with locals
    assert not leaks(caplog.text)
    assert not leaks(repr(pickle.loads(pickle.dumps(exc))))
    assert exc.__context__ is None or not leaks(repr(exc.__context__))


def test_401_path(http_server, debug_logs):
    http_server.respond = json_response(
        401, error_body("authentication_error", "The API key provided is invalid or has been revoked."))
    with client_for(http_server.url) as client, pytest.raises(AuthenticationError) as info:
        client.request("GET", "/v1/compliance/activities")
    # the server really received the key, and the httpx/httpcore loggers really ran
    assert http_server.seen_headers[0].get("x-api-key") == KEY
    assert any(r.name.startswith("httpcore") for r in debug_logs.records)
    assert any(r.name == "httpx" for r in debug_logs.records)
    _assert_no_leak(info, debug_logs)


def test_403_path(http_server, debug_logs):
    http_server.respond = json_response(403, error_body(
        "permission_error", "Missing required scopes. Got: ['read:compliance_user_data'] "
                            "Needed: ['read:compliance_activities']"))
    with client_for(http_server.url) as client, pytest.raises(PermissionDeniedError) as info:
        list(client.iter_activity_pages("2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"))
    _assert_no_leak(info, debug_logs)


def test_5xx_exhausted_path(http_server, debug_logs):
    http_server.respond = json_response(503, error_body("overloaded_error", "Overloaded."))
    with client_for(http_server.url) as client, pytest.raises(RetriesExhaustedError) as info:
        client.request("GET", "/v1/compliance/organizations")
    assert len(http_server.seen_headers) == 3
    assert any(r.levelno == logging.WARNING for r in debug_logs.records)
    _assert_no_leak(info, debug_logs)


def test_connection_error_path(debug_logs):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there: connection refused
    with client_for(f"http://127.0.0.1:{port}") as client, pytest.raises(RetriesExhaustedError) as info:
        client.request("GET", "/v1/compliance/organizations")
    assert isinstance(info.value.last_error, TransportError)
    _assert_no_leak(info, debug_logs)


def test_api_echoing_the_key_is_scrubbed(http_server, debug_logs):
    # a misbehaving server (or proxy) that quotes the key back in its error message
    http_server.respond = json_response(400, error_body("invalid_request_error", f"bad key {KEY}"))
    with client_for(http_server.url) as client, pytest.raises(ComplianceAPIError) as info:
        client.request("GET", "/v1/compliance/organizations")
    assert "(redacted)" in str(info.value)
    _assert_no_leak(info, debug_logs)


def test_key_wrapper_and_client_reprs():
    key = APIKey(KEY)
    for text in (repr(key), str(key), f"{key}", "%s" % key, repr([key]), repr({"k": key})):
        assert not leaks(text) and "(redacted)" in text
    assert copy.deepcopy(key) is key
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with ComplianceClient(KEY, "https://x.test", budget=RequestBudget(None)) as client:
        assert not leaks(repr(client)) and not leaks(repr(vars(client)))
        assert not leaks(repr(client._http.headers)) and not leaks(repr(client._http.auth))
