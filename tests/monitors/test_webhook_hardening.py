"""Webhook delivery that can't be hijacked or stalled (issue #12): attacker-chosen text (a login email is a group
key) can form no Slack mention or link, everything is capped, a dripping receiver cannot hold a post or a tick, and
each alert is marked delivered right after its 2xx."""

from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta

from pipeline.monitors.delivery import DeliverySettings, alert_message, deliver_alerts_tick, run_failure_message
from tests.monitors.test_alert_delivery import CONFIG, T0, Log, delivered_at, make_alerts

HOSTILE = "<!channel> <https://evil.example/login|Reset your password> `x` <@U123> &amp; *b*\n" + "A" * 20_000


class DrippingReceiver:
    """Answers the first `good` requests at once with 200, then sends every later answer one byte per 0.2 s
    (600 bytes: two minutes). `finished` tells whether a drip ran to its end."""

    def __init__(self, good: int = 0):
        self.good, self.requests, self.finished = good, 0, False
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hooks/T0/B0/secret"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int([h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0])
            while len(body) < length:
                body += conn.recv(65536)
            self.requests += 1
            answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            if self.requests <= self.good:
                conn.sendall(answer)
                return
            try:
                for byte in (answer[:-2] + b" " * 560 + answer[-2:])[:600]:
                    conn.sendall(bytes([byte]))
                    threading.Event().wait(0.2)
                self.finished = True
            except OSError:
                pass

    def close(self):
        self.sock.close()


def test_hostile_text_forms_no_mention_or_link_and_is_capped():
    alert = {"alert_id": "alert_x", "monitor": "excessive_failed_auth", "severity": "critical",
             "group_key": HOSTILE, "event_count": 7, "threshold": 5.0, "first_event_at": T0,
             "last_event_at": T0 + timedelta(minutes=3), "activity_ids": [HOSTILE, "activity_1"]}
    failure = run_failure_message(run_id="r1", job_name="ingest_activities", error=HOSTILE)
    for message in (alert_message(alert, CONFIG), failure):
        texts = [message["text"]] + [t["text"] for t in _text_objects(message["blocks"])]
        for text in texts:
            assert "<" not in text and ">" not in text, text[:200]  # no <!channel>, <url|label>, <@user>
            assert "`x`" not in text  # a backtick in the value cannot close the code span
        assert len(message["text"]) <= 3000
        assert all(t.get("verbatim") for t in _text_objects(message["blocks"]) if t["type"] == "mrkdwn")
        assert "&lt;!channel&gt;" in message["text"]
        assert len(json.dumps(message)) < 40_000  # capped, not 20k characters per field


def _text_objects(blocks):
    for block in blocks:
        for key in ("text",):
            if isinstance(block.get(key), dict):
                yield block[key]
        yield from block.get("fields", [])
        yield from block.get("elements", [])


def test_a_dripping_receiver_cannot_hold_the_tick_and_delivered_alerts_are_marked_at_once(tmp_path):
    path = tmp_path / "w.duckdb"
    ids = make_alerts(path, 3)
    receiver = DrippingReceiver(good=1)  # the first alert is answered, the second one drips
    try:
        settings = DeliverySettings(webhook_url=receiver.url, timeout_seconds=1.0, tick_deadline_seconds=3.0)
        out = deliver_alerts_tick(path, settings, None, Log(), config=CONFIG)
        assert not receiver.finished, "the tick waited for the drip to end"
    finally:
        receiver.close()
    assert len(out.delivered) == 1 and out.marked == 1
    assert out.failed and out.failed[0][1] == "deadline exceeded"
    marks = delivered_at(path)
    assert marks[out.delivered[0]] is not None  # marked right after its 2xx
    assert sum(v is None for v in marks.values()) == 2 and set(marks) == set(ids)
    assert json.loads(out.cursor)["next_attempt"]  # the failing webhook is backed off, not hammered
