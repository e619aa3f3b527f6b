"""Alert delivery to a webhook as Slack-compatible JSON ({"text", "blocks"}), plain Python.

One sensor tick (`deliver_alerts_tick`):
  1. open the warehouse briefly (give up the tick at once if another process holds the lock: sensors cannot wait
     in the DuckDB pool), mark alerts delivered in an earlier tick whose marking could not be written, read the
     undelivered alerts, close;
  2. post them one by one (no connection held meanwhile);
  3. open again and set `delivered_at` of those answered 2xx. If the warehouse is busy now, the ids stay in the
     sensor cursor and are marked on the next tick without being posted again.
Delivery is at least once: a crash between the post and the cursor save posts again. A failing webhook (network
error, 5xx, 408, 429) stops the tick and the next attempts back off exponentially (cursor `next_attempt`); a 4xx on
one alert (the receiver refuses that payload) is retried with the text only and given up after 3 attempts, so one
bad alert cannot block the others. Without a webhook URL each new alert is logged once.

Run-failure notifications (`post_or_queue`) are posted at once; when that fails they go to an outbox directory beside
the warehouse that the alert sensor retries with the same backoff.

Settings (environment, validated in pipeline.settings; docs/configuration.md): COMPLIANCE_ALERT_WEBHOOK_URL (unset =
log only; the URL is a secret and never logged), COMPLIANCE_ALERT_WEBHOOK_TIMEOUT_SECONDS (10),
COMPLIANCE_ALERT_RETRY_BASE_SECONDS (30), COMPLIANCE_ALERT_RETRY_MAX_SECONDS (900), COMPLIANCE_ALERT_MAX_PER_TICK (20;
Slack accepts about 1 message/s), COMPLIANCE_ALERT_TICK_DEADLINE_SECONDS (20: all posts of a tick). The timeout is
the total time of one post. Every text is escaped for Slack mrkdwn and capped; values from the data are shown as inline code.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from pipeline.monitors.alerts import alerts_raised_after, mark_delivered, pending_alerts
from pipeline.monitors.config import MonitorsConfig, load_config
from pipeline.settings import PipelineSettings, load_settings
from pipeline.warehouse.connection import WarehouseLockedError, open_warehouse

WEBHOOK_ENV = "COMPLIANCE_ALERT_WEBHOOK_URL"
MAX_PERMANENT_ATTEMPTS = 3
MAX_TEXT_CHARS = 3000  # Slack truncates longer texts; a capped message still says what happened


@dataclass(frozen=True)
class DeliverySettings:
    webhook_url: str | None = None
    timeout_seconds: float = 10.0
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 900.0
    max_per_tick: int = 20
    tick_deadline_seconds: float = 20.0  # all posts of one tick: ends before the next one (every 30 s)

    @classmethod
    def from_env(cls) -> "DeliverySettings":
        """From the validated environment (pipeline.settings): raises SettingsError naming every invalid variable."""
        return cls.from_settings(load_settings())

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> "DeliverySettings":
        return cls(
            webhook_url=settings.alert_webhook_url,
            timeout_seconds=settings.alert_webhook_timeout_seconds,
            retry_base_seconds=settings.alert_retry_base_seconds,
            retry_max_seconds=settings.alert_retry_max_seconds,
            max_per_tick=settings.alert_max_per_tick,
            tick_deadline_seconds=settings.alert_tick_deadline_seconds,
        )

    def backoff(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.retry_base_seconds * 2 ** max(failures - 1, 0), self.retry_max_seconds))


# ---------------------------------------------------------------------------------------------------------------
# messages

MAX_VALUE_CHARS = 200  # one attacker-chosen value (a login email, a group key) in a message


def _esc(text: Any, limit: int | None = None) -> str:
    """Slack mrkdwn escaping: `&`, `<`, `>` are the control characters (`<!channel>`, `<http://x|label>`, `<@U1>`);
    escaped, no mention or link can be formed. Control characters go too; capped at `limit`."""
    text = "".join(c if c.isprintable() or c == "\n" else " " for c in str(text))
    if limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(text: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """An untrusted value as inline code: no formatting, and Slack does not turn URLs or emails in code into links.
    Backticks inside it would close the span: replaced by a look-alike."""
    return f"`{_esc(str(text).replace('`', 'ˋ'), limit) or ' '}`"


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not auto-link URLs, channel names or mentions in this text
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _ts(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _condition(alert: Mapping[str, Any], config: MonitorsConfig) -> str:
    try:
        rule = config.rule(alert["monitor"])
    except KeyError:
        return f"count > {alert['threshold']:g}"
    if rule.name == "resource_deletion_outlier":
        return f"≥ {rule.floor} in 1 h and > baseline ({alert['threshold']:.1f})"
    return f"count > {alert['threshold']:g} in {rule.window_minutes} min"


def alert_message(alert: Mapping[str, Any], config: MonitorsConfig | None = None) -> dict[str, Any]:
    config = config or load_config()
    monitor = alert["monitor"]
    try:
        description = config.rule(monitor).description
    except KeyError:
        description = ""
    severity = _esc(str(alert.get("severity") or "critical").capitalize(), 20)
    who = f" ({_code(alert['group_key'])})" if alert.get("group_key") else ""
    again = (f" ({_esc(alert['notify_reason'], 80)}, status {_esc(alert.get('status') or 'open', 20)})"
             if alert.get("notify_reason") else "")
    # Every value that comes from the data (group keys are login emails, IPs, ...) is escaped and capped: the top
    # level `text` (notifications, clients without blocks) as much as the blocks.
    text = (f"[{severity}] {_code(monitor, 80)}{who}: {int(alert['event_count'])} event(s) from "
            f"{_ts(alert['first_event_at'])} to {_ts(alert['last_event_at'])}. "
            f"Alert {_esc(alert['alert_id'], 80)}{again}.")
    ids = list(alert.get("activity_ids") or [])
    shown = ", ".join(_code(i, 80) for i in ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    fields = [("Monitor", _code(monitor, 80)), ("Severity", severity),
              ("Group", _code(alert.get("group_key") or "—")), ("Events", str(int(alert["event_count"]))),
              ("Condition", _esc(_condition(alert, config), 200)), ("First event", _ts(alert["first_event_at"])),
              ("Last event", _ts(alert["last_event_at"])), ("Alert id", _code(alert["alert_id"], 80))]
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _esc(f"{severity}: {monitor}", 150),
                                    "emoji": False}},
        {"type": "section", "text": _mrkdwn(_esc(description, 2900) or _code(monitor, 80))},
        {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}"[:2000]) for k, v in fields]},
        {"type": "context", "elements": [_mrkdwn(f"Activities: {shown or '—'}"[:2900])]},
    ]
    return {"text": text[:MAX_TEXT_CHARS], "blocks": blocks}


def run_failure_message(*, run_id: str, job_name: str, error: str, tags: Mapping[str, str] | None = None
                        ) -> dict[str, Any]:
    tags = tags or {}
    scope = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']} … {tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags else "")
    # The error text can quote delivered data (an exception about a record): escaped like everything else.
    text = (f"[Pipeline] Run {_esc(run_id, 80)} of job {_code(job_name, 100)} failed"
            + (f" ({_esc(scope, 100)})" if scope else "") + f": {_code(error, 1500)}")
    fields = [("Job", _code(job_name, 100)), ("Run id", _code(run_id, 80))]
    if scope:
        fields.append(("Partitions", _esc(scope, 100)))
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": _esc(f"Run failed: {job_name}", 150),
                                    "emoji": False}},
        {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}"[:2000]) for k, v in fields]},
        {"type": "section", "text": _mrkdwn(f"```{_esc(error.replace('`', 'ˋ'), 2800)}```")},
    ]
    return {"text": text[:MAX_TEXT_CHARS], "blocks": blocks}


# ---------------------------------------------------------------------------------------------------------------
# posting

@dataclass
class PostResult:
    ok: bool
    status: int | None = None
    error: str | None = None

    @property
    def retryable(self) -> bool:
        """Worth retrying later with the same payload (receiver or network trouble)."""
        return not self.ok and (self.status is None or self.status >= 500 or self.status in (408, 429))


def _post_now(url: str, payload: dict, timeout: float, deadline: float) -> PostResult:
    try:
        with httpx.Client(timeout=timeout) as client, client.stream("POST", url, json=payload) as response:
            for _ in response.iter_raw(4096):  # a receiver dripping its body is cut at the deadline
                if time.monotonic() > deadline:
                    return PostResult(False, None, "deadline exceeded")
    except httpx.HTTPError as exc:
        # the exception text can contain the URL (a secret): report its type only
        return PostResult(False, None, type(exc).__name__)
    if 200 <= response.status_code < 300:
        return PostResult(True, response.status_code)
    return PostResult(False, response.status_code, f"HTTP {response.status_code}")


def post_json(url: str, payload: dict, timeout: float) -> PostResult:
    """POST within `timeout` seconds in total (httpx's timeouts are per read: a receiver sending a byte a second
    would hold it for ever). The post runs in a daemon thread; past the deadline it is abandoned, reported as a
    retryable failure, and its connection dropped as soon as the receiver sends anything more."""
    deadline = time.monotonic() + timeout
    outcome: list[PostResult] = []
    worker = threading.Thread(target=lambda: outcome.append(_post_now(url, payload, timeout, deadline)),
                              name="webhook-post", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else PostResult(False, None, "deadline exceeded")


Poster = Callable[[str, dict, float], PostResult]


# ---------------------------------------------------------------------------------------------------------------
# the sensor tick

@dataclass
class DeliveryState:
    unmarked: dict[str, str] = field(default_factory=dict)      # alert_id -> delivered at (iso), not yet written
    failures: int = 0                                           # consecutive retryable failures
    next_attempt: str | None = None                             # iso; no posting before
    attempts: dict[str, int] = field(default_factory=dict)      # alert_id -> refused (4xx) attempts
    given_up: list[str] = field(default_factory=list)           # refused MAX_PERMANENT_ATTEMPTS times
    logged_until: list[str] | None = None                       # [raised_at iso, alert_id] when log-only

    @classmethod
    def parse(cls, cursor: str | None) -> "DeliveryState":
        if not cursor:
            return cls()
        try:
            data = json.loads(cursor)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return cls()

    def dump(self) -> str:
        self.given_up = self.given_up[-1000:]
        return json.dumps(self.__dict__, sort_keys=True)


@dataclass
class TickOutcome:
    cursor: str
    delivered: list[str] = field(default_factory=list)
    marked: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    outbox_delivered: int = 0
    skipped: str | None = None


def outbox_dir(warehouse_path: str | Path) -> Path:
    return Path(warehouse_path).parent / ".alert_outbox"


def post_or_queue(payload: dict, warehouse_path: str | Path, settings: DeliverySettings,
                  log: logging.Logger | Any, poster: Poster = post_json) -> str:
    """Post a notification now; when the webhook fails, queue it for the alert sensor. Returns what happened."""
    if not settings.webhook_url:
        log.warning(payload["text"])
        return "logged"
    result = poster(settings.webhook_url, payload, settings.timeout_seconds)
    if result.ok:
        return "delivered"
    box = outbox_dir(warehouse_path)
    box.mkdir(parents=True, exist_ok=True)
    name = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.json"
    tmp = box / (name + ".tmp")
    tmp.write_text(json.dumps(payload))
    tmp.rename(box / name)  # atomic: the sensor never reads half a file
    log.warning(f"webhook failed ({result.error}); notification queued for retry")
    return "queued"


def deliver_alerts_tick(warehouse_path: str | Path, settings: DeliverySettings, cursor: str | None,
                        log: logging.Logger | Any, *, now: datetime | None = None, poster: Poster = post_json,
                        config: MonitorsConfig | None = None, lock_timeout: float = 0.5) -> TickOutcome:
    now = now or datetime.now(timezone.utc)
    state = DeliveryState.parse(cursor)
    out = TickOutcome(cursor=cursor or state.dump())
    if not Path(warehouse_path).exists():
        out.skipped = "no warehouse yet"
        return out
    backing_off = is_backing_off(settings, state, now)
    if backing_off and not state.unmarked:
        out.skipped = f"webhook failing, next attempt at {state.next_attempt}"
        return out
    try:
        alerts = _mark_and_read(warehouse_path, settings, state, out, backing_off, lock_timeout)
    except WarehouseLockedError:
        out.skipped = "warehouse busy (another process holds the DuckDB lock); next tick"
        return out
    config = config or load_config()
    if not settings.webhook_url:
        for alert in alerts:
            log.warning("ALERT (no webhook configured): " + alert_message(alert, config)["text"])
            out.logged.append(alert["alert_id"])
            state.logged_until = [alert["raised_at"].isoformat(), alert["alert_id"]]
    elif backing_off:
        out.skipped = f"webhook failing, next attempt at {state.next_attempt}"
    else:
        _post_alerts(warehouse_path, settings, alerts, config, state, out, now, poster, log, lock_timeout)
    out.cursor = state.dump()
    return out


def is_backing_off(settings: DeliverySettings, state: DeliveryState, now: datetime) -> bool:
    """The webhook failed lately and its next attempt is still ahead."""
    return bool(settings.webhook_url and state.next_attempt and datetime.fromisoformat(state.next_attempt) > now)


def note_refusal(state: DeliveryState, alert_id: str) -> int | None:
    """Count a refused (4xx) post of one alert; the number of attempts when it is now given up, else None."""
    n = state.attempts.get(alert_id, 0) + 1
    state.attempts[alert_id] = n
    if n < MAX_PERMANENT_ATTEMPTS:
        return None
    state.given_up.append(alert_id)
    state.attempts.pop(alert_id)
    return n


def settle_backoff(state: DeliveryState, healthy: bool, now: datetime, settings: DeliverySettings) -> None:
    """After a tick's posts: a healthy webhook clears the backoff, a failing one pushes the next attempt further."""
    if healthy:
        state.failures, state.next_attempt = 0, None
    else:
        state.failures += 1
        state.next_attempt = (now + settings.backoff(state.failures)).isoformat()


def _mark_and_read(warehouse_path: str | Path, settings: DeliverySettings, state: DeliveryState, out: TickOutcome,
                   backing_off: bool, lock_timeout: float) -> list[dict]:
    """One short visit to the warehouse: write the markings an earlier tick could not, read what to post or log."""
    with open_warehouse(warehouse_path, lock_timeout=lock_timeout) as conn:
        if state.unmarked:
            out.marked += mark_delivered(conn, {k: datetime.fromisoformat(v) for k, v in state.unmarked.items()})
            state.unmarked = {}
        if not settings.webhook_url:
            if state.logged_until:
                ts, last_id = datetime.fromisoformat(state.logged_until[0]), state.logged_until[1]
                return alerts_raised_after(conn, ts, last_id, limit=settings.max_per_tick * 10)
            return pending_alerts(conn, settings.max_per_tick * 10)
        if backing_off:
            return []
        return pending_alerts(conn, settings.max_per_tick, exclude=state.given_up)


def _post_alerts(warehouse_path: str | Path, settings: DeliverySettings, alerts: list[dict], config: MonitorsConfig,
                 state: DeliveryState, out: TickOutcome, now: datetime, poster: Poster, log: logging.Logger | Any,
                 lock_timeout: float) -> None:
    """Post the outbox then the alerts within the tick's deadline; each delivered alert is marked at once."""
    tick_deadline = time.monotonic() + settings.tick_deadline_seconds

    def budget() -> float:  # each post gets its own timeout, never beyond the tick's deadline
        return min(settings.timeout_seconds, tick_deadline - time.monotonic())

    healthy = _drain_outbox(warehouse_path, settings, poster, out, budget)
    for alert in alerts if healthy else []:
        if budget() <= 0:
            break  # the rest waits for the next tick (not a webhook failure)
        payload = alert_message(alert, config)
        result = poster(settings.webhook_url, payload, budget())
        if not result.ok and not result.retryable and budget() > 0:
            result = poster(settings.webhook_url, {"text": payload["text"]}, budget())
        if result.ok:
            at = datetime.now(timezone.utc)
            out.delivered.append(alert["alert_id"])
            state.attempts.pop(alert["alert_id"], None)
            # Marked at once: a tick cut short later (deadline, crash) never posts this one again.
            out.marked += _mark_now(warehouse_path, alert["alert_id"], at, state, lock_timeout)
            continue
        out.failed.append((alert["alert_id"], result.error or "failed"))
        if result.retryable:
            healthy = False
            break
        given_up_after = note_refusal(state, alert["alert_id"])
        if given_up_after is not None:
            log.error(f"alert {alert['alert_id']} refused by the webhook {given_up_after} times ({result.error}); "
                      "giving up")
    settle_backoff(state, healthy, now, settings)
    if not healthy:
        log.warning(f"webhook failing ({out.failed[-1][1] if out.failed else 'outbox'}); "
                    f"retry after {state.next_attempt}")


def _mark_now(warehouse_path, alert_id: str, at: datetime, state: DeliveryState, lock_timeout: float) -> int:
    try:
        with open_warehouse(warehouse_path, lock_timeout=max(lock_timeout, 2.0)) as conn:
            return mark_delivered(conn, {alert_id: at})
    except WarehouseLockedError:
        # posted but not marked: remembered in the cursor, marked next tick, never posted again
        state.unmarked[alert_id] = at.isoformat()
        return 0


def _drain_outbox(warehouse_path, settings: DeliverySettings, poster: Poster, out: TickOutcome,
                  budget: Callable[[], float] | None = None) -> bool:
    """Retry queued run-failure notifications, oldest first; False when the webhook is still failing."""
    box = outbox_dir(warehouse_path)
    if not box.is_dir():
        return True
    for path in sorted(box.glob("*.json")):
        timeout = budget() if budget is not None else settings.timeout_seconds
        if timeout <= 0:
            return True  # out of time for this tick, not a failure
        result = poster(settings.webhook_url, json.loads(path.read_text()), timeout)
        if result.ok or not result.retryable:
            path.unlink(missing_ok=True)  # a refused payload will not be accepted later either
            out.outbox_delivered += result.ok
            continue
        out.failed.append((path.name, result.error or "failed"))
        return False
    return True
