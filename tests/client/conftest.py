"""Helpers for client tests: mock transports that count requests, a fake activity feed, a real loopback HTTP server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from pipeline.compliance_api import ComplianceClient, RequestBudget

# A fake key, assembled at run time so that secret scanners do not mistake it for a real one.
KEY = "sk-ant-api01-" + "TESTSECRET-q7Wm2pXz9LkR4vBn8TyU3cD6"


def error_body(error_type: str, message: str, request_id: str = "req_test") -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


class Recorder:
    """A MockTransport handler that records requests and answers from a script or a function."""

    def __init__(self, responder: Callable[[httpx.Request, int], httpx.Response]):
        self.responder = responder
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responder(request, len(self.requests))

    @property
    def count(self) -> int:
        return len(self.requests)


def scripted(*responses: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]) -> Recorder:
    """Answer the n-th request with the n-th item (the last one repeats); exceptions are raised."""

    def respond(request: httpx.Request, n: int) -> httpx.Response:
        item = responses[min(n, len(responses)) - 1]
        if isinstance(item, Exception):
            raise item
        if callable(item) and not isinstance(item, httpx.Response):
            return item(request)
        return item

    return Recorder(respond)


def ok(payload: dict | None = None, **headers: str) -> httpx.Response:
    headers.setdefault("request-id", "req_ok")
    return httpx.Response(200, json=payload if payload is not None else {"ok": True}, headers=headers)


@dataclass
class FakeSleep:
    calls: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def make_client() -> Iterator[Callable[..., ComplianceClient]]:
    """Client on a MockTransport with an unlimited private budget, tiny backoff and no real sleeping."""
    clients: list[ComplianceClient] = []

    def factory(handler: Callable[[httpx.Request], httpx.Response], **kw) -> ComplianceClient:
        kw.setdefault("api_key", KEY)
        kw.setdefault("base_url", "https://compliance.test")
        kw.setdefault("backoff_initial", 0.001)
        kw.setdefault("backoff_max", 0.002)
        kw.setdefault("budget", RequestBudget(None, sleep=FakeSleep()))
        kw.setdefault("sleep", FakeSleep())
        client = ComplianceClient(transport=httpx.MockTransport(handler), **kw)
        clients.append(client)
        return client

    yield factory
    for c in clients:
        c.close()


# ---------------------------------------------------------------------------------------------------------------------
# A fake activity feed: newest first, `after_id` = last id of the previous page, optional at-least-once repeats.


def make_activity(i: int) -> dict:
    # ids sort with created_at so that descending order is easy to reason about
    return {"id": f"activity_{i:06d}", "created_at": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "type": "claude_chat_created", "organization_id": "org_1", "organization_uuid": "u-1",
            "actor": {"type": "user_actor", "user_id": "user_1", "email_address": "a@example.com",
                      "ip_address": "10.0.0.1", "user_agent": "ua"}}


class FakeFeed:
    """Serves `items` (already in server order) in pages of `limit`; `repeat` re-sends that many items of the previous
    page at the start of each following page (at-least-once delivery across a page boundary)."""

    def __init__(self, items: list, repeat: int = 0, key=lambda item: item["id"]):
        self.items = items
        self.repeat = repeat
        self.key = key
        self.seen_params: list[httpx.QueryParams] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        self.seen_params.append(params)
        limit = int(params.get("limit", 100))
        start = 0
        after = params.get("after_id")
        if after is not None:
            idx = next((i for i, it in enumerate(self.items) if isinstance(it, dict) and self.key(it) == after), None)
            if idx is None:
                return httpx.Response(400, json=error_body("invalid_request_error", f"Invalid `after_id`. {after}"))
            start = idx + 1
        chunk = self.items[start:start + limit]
        has_more = start + limit < len(self.items)
        sent = (self.items[max(start - self.repeat, 0):start] if after is not None else []) + chunk
        ids = [self.key(it) for it in chunk if isinstance(it, dict) and "id" in it]
        body = {"data": sent, "has_more": has_more, "first_id": ids[0] if ids else None,
                "last_id": ids[-1] if ids else None}
        return httpx.Response(200, content=json.dumps(body).encode(), headers={"request-id": f"req_{len(self.seen_params)}",
                                                                            "content-type": "application/json"})


# ---------------------------------------------------------------------------------------------------------------------
# A real HTTP server on loopback, so httpx/httpcore (and their loggers) run for real.


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self):
        self.server.seen_headers.append(dict(self.headers))  # type: ignore[attr-defined]
        status, headers, body = self.server.respond(self.command, self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_DELETE = _serve

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def http_server():
    """`server.respond = lambda method, path: (status, headers, body_bytes)`; `server.url`."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.seen_headers = []
    server.respond = lambda method, path: (200, {"content-type": "application/json"}, b"{}")
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
