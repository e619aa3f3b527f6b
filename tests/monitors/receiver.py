"""A webhook receiver on loopback for the delivery tests: records every JSON body, answers scripted statuses."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []     # answered first, in order; then 200
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    if status == 200:
                        outer.bodies.append(body)
                    outer.attempts.append((status, body))
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args) -> None:
                pass

        self.attempts: list[tuple[int, dict]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alert_ids(self) -> list[str]:
        """Alert ids of the delivered alert messages (from their text)."""
        out = []
        for b in self.bodies:
            text = b.get("text", "")
            if " Alert alert_" in text:
                out.append(text.rsplit(" Alert ", 1)[1].rstrip("."))
        return out
