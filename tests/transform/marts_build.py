"""One warehouse built the way production builds it, shared by tests/transform and tests/serve (built once per
pytest process, on first use):

1. a simulated day (every known activity type, a few unknown ones, planted monitor incidents, chats, directory)
   ingested through Dagster: raw/activities (ranged run, with the monitors), raw/chats, raw/organization_users;
   one chat is then hard-deleted through the API and found by raw/chats_reconciliation;
2. the marts built through Dagster with a full refresh (dbt_reference + dbt_activity_marts), then
3. one more 5-minute window (synthetic records: a brand-new unknown type, reconnaissance followed by a privilege
   escalation, a Compliance API call from an embargoed country, join proposals rejected and approved) loaded with the
   ingestion's loader and built through an *incremental* marts run (which finds that window as the only change), then
4. the serving file published (serve/marts_file).

It is built in a process of its own, started at collection (tests/conftest.py) when a collected test uses it: the
build (mostly dbt and DuckDB) overlaps the tests that run before its first user instead of adding ~1.5 minutes to
the suite, and its environment is the one of the start of the session (tests that monkeypatch the environment
meanwhile do not reach it). That process keeps the day's simulator running (the chats tests use the API as
independent truth) until the session ends.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

DAY = "2026-11-02"  # a Monday
EXTRA_WINDOW = "2026-11-03-00:00"
EXTRA_START = datetime(2026, 11, 3, 0, 0, tzinfo=timezone.utc)
EXTRA_END = datetime(2026, 11, 3, 0, 5, tzinfo=timezone.utc)
NEW_UNKNOWN_TYPE = "claude_timeline_forked"
RECON_ACTOR = "mallory.recon@northwind-labs.com"
EMBARGOED_IP_COUNTRY = "IR"


@dataclass
class MartsBuild:
    warehouse: Path
    serving: Path
    base_url: str
    full_invocation: str = ""
    incremental_invocation: str = ""
    incremental_vars: dict = field(default_factory=dict)
    extra_ids: list[str] = field(default_factory=list)
    hard_deleted_chat: str = ""
    soft_deleted_chat: str = ""


def resources(base_url: str, warehouse: Path) -> dict:
    from pipeline.defs.resources import ComplianceAPIResource, GeoIPResource, WarehouseResource
    from pipeline.defs.transform.project import dbt_resource

    return {"compliance_api": ComplianceAPIResource(base_url=base_url,
                                                    requests_per_minute=100_000),
            "warehouse": WarehouseResource(path=str(warehouse)), "geoip": GeoIPResource(), "dbt": dbt_resource()}


def _embargoed_ip() -> str:
    import ipaddress

    pool = json.loads((Path(__file__).resolve().parents[2] / "simulator" / "data" / "ip_pool.json").read_text())
    net = ipaddress.ip_network(pool["countries"][EMBARGOED_IP_COUNTRY]["v4"][0])
    return str(net.network_address + 1)


def extra_records() -> list[dict]:
    """The synthetic 5-minute window, shaped exactly like API records."""
    def ts(minute: int, second: int) -> str:
        return f"2026-11-03T00:0{minute}:{second:02d}.000000Z"

    user = {"type": "user_actor", "email_address": RECON_ACTOR, "user_id": "user_01ReconActor000000000000",
            "ip_address": "8.8.8.8", "user_agent": "python-requests/2.32.3"}
    org = {"organization_id": "org_01TestOrg", "organization_uuid": "00000000-0000-4000-8000-000000000001"}
    return [
        {"id": "activity_01ExtraRecon1", "created_at": ts(0, 5), **org, "actor": user, "type": "org_users_listed"},
        {"id": "activity_01ExtraRecon2", "created_at": ts(0, 9), **org, "actor": user, "type": "group_list_viewed"},
        {"id": "activity_01ExtraEscalation", "created_at": ts(1, 30), **org, "actor": user,
         "type": "claude_user_role_updated", "user_id": "user_01Target", "user_email": "target@northwind-labs.com",
         "previous_role": "user", "current_role": "admin"},
        {"id": "activity_01ExtraUnknown", "created_at": ts(2, 0), **org, "actor": user, "type": NEW_UNKNOWN_TYPE},
        {"id": "activity_01ExtraEmbargoedApi", "created_at": ts(3, 0), "organization_id": None,
         "organization_uuid": None,
         "actor": {"type": "api_actor", "api_key_id": "apikey_01Embargoed", "ip_address": _embargoed_ip(),
                   "user_agent": "curl/8.4.0"},
         "type": "compliance_api_accessed", "request_id": "req_01Extra", "request_method": "GET",
         "status_code": 403, "url": "https://api.anthropic.com/v1/compliance/apps/chats/claude_chat_01X/messages",
         "request_body": None},
        {"id": "activity_01ExtraProposalRejected", "created_at": ts(4, 0), **org, "actor": user,
         "type": "org_join_proposal_decided", "approved": False},
        {"id": "activity_01ExtraProposalApproved", "created_at": ts(4, 1), **org, "actor": user,
         "type": "org_join_proposal_decided", "approved": True},
    ]


def load_extra_window(warehouse: Path) -> list[str]:
    from pipeline.enrichment.geo import GeoIPLookup
    from pipeline.enrichment.useragent import parse_user_agent
    from pipeline.warehouse.activities import Enricher, PageSpool, TraversalStats, load_activity_range
    from pipeline.warehouse.connection import open_warehouse

    records = extra_records()
    with PageSpool(warehouse.parent / ".spool") as spool, open_warehouse(warehouse) as conn:
        spool.add(records)
        load_activity_range(conn, spool.files, EXTRA_START, EXTRA_END, run_id="test-extra-window",
                            fetched_at=datetime.now(timezone.utc), traversal=TraversalStats(pages=1),
                            enricher=Enricher(GeoIPLookup(None), parse_user_agent))
    return [r["id"] for r in records]


def delete_one_chat(base_url: str, warehouse: Path) -> str:
    """Hard-delete one stored chat through the API's DELETE endpoint (the reconciliation then finds it gone): the
    day has a deleted chat with stored messages, which every chat panel but `deleted_chats` must leave out."""
    import httpx

    from tests.support.sim import FULL_KEY

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        chat_id = conn.execute("SELECT c.id FROM raw.chats c WHERE c.deleted_at IS NULL AND EXISTS "
                               "(SELECT 1 FROM raw.chat_messages m WHERE m.chat_id = c.id) ORDER BY c.id LIMIT 1"
                               ).fetchone()[0]
    with httpx.Client(base_url=base_url, headers={"x-api-key": FULL_KEY}, timeout=30) as http:
        http.delete(f"/v1/compliance/apps/chats/{chat_id}").raise_for_status()
    return chat_id


def soft_delete_one_chat(warehouse: Path) -> str:
    """Store one built chat as the chats ingestion stores a chat the API now reports with `deleted_at` (its row
    fetched again, same messages). The simulator soft-deletes ~3% of chats, but only up to days after their last
    message, so a closed one-day dataset has none. Done after the full build: the incremental marts run must
    carry the deletion onto the chat's already built rows."""
    with duckdb.connect(str(warehouse)) as conn:
        chat_id = conn.execute("SELECT c.id FROM raw.chats c WHERE c.deleted_at IS NULL AND c.hard_deleted_at IS NULL "
                               "AND EXISTS (SELECT 1 FROM raw.chat_messages m WHERE m.chat_id = c.id) "
                               "ORDER BY c.id DESC LIMIT 1").fetchone()[0]
        conn.execute("""UPDATE raw.chats SET deleted_at = updated_at + INTERVAL 10 MINUTE,
                                             updated_at = updated_at + INTERVAL 10 MINUTE, fetched_at = now()
                        WHERE id = ?""", [chat_id])
    return chat_id


def _invocations(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT dbt_invocation_id FROM marts.activity_overview GROUP BY 1 ORDER BY min(created_at)").fetchall()]


def build(directory: Path) -> MartsBuild:
    from pipeline.defs.ingest.assets import raw_activities
    from pipeline.defs.ingest.chats import raw_chats, raw_chats_reconciliation, raw_organization_users
    from pipeline.defs.monitors import activity_monitors
    from pipeline.defs.serve.assets import marts_file
    from pipeline.defs.transform.assets import dbt_activity_marts, dbt_reference
    from simulator.process import SimulatorProcess

    warehouse, serving = directory / "warehouse.duckdb", directory / "marts.duckdb"
    args = ["--start", f"{DAY}T00:00:00Z", "--days", "1", "--volume", "2000", "--chats-per-day", "60",
            "--rate-limit", "0", "--late-share", "0"]
    sim = SimulatorProcess(args)
    sim.__enter__()
    atexit.register(sim.__exit__, None, None, None)  # kept for the chats tests (API as independent truth)
    res = resources(sim.base_url, warehouse)
    day = {ASSET_PARTITION_RANGE_START_TAG: f"{DAY}-00:00", ASSET_PARTITION_RANGE_END_TAG: f"{DAY}-23:55"}
    assert dg.materialize([raw_activities, activity_monitors], resources=res, tags=day).success
    assert dg.materialize([raw_chats], resources=res, tags=day).success
    result_deleted = delete_one_chat(sim.base_url, warehouse)
    assert dg.materialize([raw_chats_reconciliation], resources=res).success
    assert dg.materialize([raw_organization_users], resources=res).success

    serve_config = {"ops": {"serve__marts_file": {"config": {"serving_path": str(serving)}}}}
    full = dg.materialize(
        [dbt_reference, dbt_activity_marts], resources=res,
        run_config={"ops": {"dbt_activity_marts": {"config": {"full_refresh": True}}}})
    assert full.success
    result = MartsBuild(warehouse=warehouse, serving=serving, base_url=sim.base_url,
                        hard_deleted_chat=result_deleted)
    result.full_invocation = _invocations(warehouse)[0]
    result.soft_deleted_chat = soft_delete_one_chat(warehouse)

    result.extra_ids = load_extra_window(warehouse)
    incremental = dg.materialize([dbt_activity_marts, marts_file], resources=res, run_config=serve_config)
    assert incremental.success
    result.incremental_invocation = [i for i in _invocations(warehouse) if i != result.full_invocation][0]
    from pipeline.defs.transform.assets import FORWARD_HORIZON, dbt_vars

    # the only changed window, widened by the marts' forward horizon
    result.incremental_vars = dbt_vars(EXTRA_START, EXTRA_END + FORWARD_HORIZON)
    return result


class BackgroundBuild:
    """`build()` in a child process (`python -m tests.transform.marts_build DIR`): it prints the result as one JSON
    line, then keeps the simulator running until its stdin closes (`close()`, or this process ending)."""

    def __init__(self):
        self.directory = Path(tempfile.mkdtemp(prefix="marts-build-"))
        self.log_path = self.directory / "build.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "tests.transform.marts_build", str(self.directory)],
                                         cwd=Path(__file__).resolve().parents[2], env=dict(os.environ),
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self._result: MartsBuild | None = None

    def result(self) -> MartsBuild:
        if self._result is None:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                raise RuntimeError(f"the marts build failed ({self.proc.returncode}):\n"
                                   + self.log_path.read_text(errors="replace")[-5000:])
            fields = json.loads(line)
            self._result = MartsBuild(**{**fields, "warehouse": Path(fields["warehouse"]),
                                         "serving": Path(fields["serving"])})
        return self._result

    def close(self) -> None:
        if self.proc.poll() is None:
            if self._result is None:  # still building (no test used it: a --collect-only, a failed session)
                self.proc.send_signal(signal.SIGINT)
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


_lock = threading.Lock()
_background: BackgroundBuild | None = None


def start_background_build() -> BackgroundBuild:
    """Start the build now (at collection), once per pytest process; `marts_build()` waits for it."""
    global _background
    with _lock:
        if _background is None:
            _background = BackgroundBuild()
            atexit.register(_background.close)
        return _background


def marts_build() -> MartsBuild:
    return start_background_build().result()


def _serve_build(directory: Path) -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # everything else this process and its children print goes to the log, not into the result pipe
    result = build(directory)
    out.write(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(result).items()}) + "\n")
    out.flush()
    sys.stdin.read()  # until the tests are done with the simulator (or their process is gone)


def copy_warehouse(build_: MartsBuild, directory: Path) -> Path:
    """A private copy for tests that change the warehouse."""
    target = directory / "warehouse.duckdb"
    shutil.copyfile(build_.warehouse, target)
    return target


def raw_records(warehouse: Path) -> list[dict]:
    """Every stored activity as the JSON the API delivered (the independent truth of the exact-number tests)."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return [json.loads(r[0]) for r in conn.execute("SELECT raw FROM raw.activities").fetchall()]


if __name__ == "__main__":
    _serve_build(Path(sys.argv[1]))
