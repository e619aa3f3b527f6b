"""`dagster dev` (webserver + daemon) in a subprocess, driven over GraphQL the way the UI drives it: used by the demo
(`make run`), the tests that need a real Dagster deployment, and the backfill benchmark."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from pipeline.config import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_instance(home: Path):
    """The Dagster instance of `home` ($DAGSTER_HOME), read beside a running `dagster dev` (SQLite allows it)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


class DagsterDev:
    def __init__(self, home: Path, env: dict[str, str], *, instance_yaml: str | None = None, port: int | None = None,
                 stop_timeout: float = 60):
        """`stop_timeout`: how long `dagster dev` may take to stop after SIGINT (its own limit for the daemon is
        60 s: a backfill iteration in progress is waited for) before what is left is interrupted and killed."""
        self.home = home
        self.stop_timeout = stop_timeout
        self.env = env
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        if instance_yaml is None:
            shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
        else:
            (home / "dagster.yaml").write_text(instance_yaml)
        self.log_path = home / "dagster-dev.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "DagsterDev":
        env = {**os.environ, **self.env, "DAGSTER_HOME": str(self.home)}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            # A parent started in the background (`cmd &`) ignores SIGINT, and children inherit that: dagster dev
            # must hear the SIGINT it is stopped with.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dagster dev exited: {self.log_path.read_text()[-3000:]}")
            try:
                if self.graphql("{ version }").get("version"):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise TimeoutError(f"dagster dev did not start: {self.log_path.read_text()[-3000:]}")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            # SIGINT to `dagster dev` alone: it stops the webserver and the daemon through their shutdown pipes,
            # then its code server. (A SIGINT to the whole group also stops the code server at once, which
            # `dagster dev` then restarts, a fresh definitions load and dbt parse, while it waits for the daemon.)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        self._stop_group()
        self._log.close()

    def _stop_group(self, timeout: float = 10) -> None:
        """SIGINT to what is left of the process group (run workers, and the code server `dagster dev` leaves to
        its heartbeat timeout), SIGKILL to what is still there after `timeout` seconds."""
        for sig, wait in ((signal.SIGINT, timeout), (signal.SIGKILL, timeout)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while self._group_alive() and time.monotonic() < deadline:
                time.sleep(0.2)
        if self.proc.poll() is None:
            self.proc.wait()

    def _group_alive(self) -> bool:
        if self.proc.poll() is None:
            return True
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                              timeout=60)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    def launch_backfill(self, asset_path: list[str], start: str, end: str) -> str:
        data = self.graphql("""
            mutation($params: LaunchBackfillParams!) {
              launchPartitionBackfill(backfillParams: $params) {
                __typename
                ... on LaunchBackfillSuccess { backfillId }
                ... on PythonError { message }
                ... on InvalidSubsetError { message }
              }
            }""", {"params": {"partitionsByAssets": [
                {"assetKey": {"path": asset_path}, "partitions": {"range": {"start": start, "end": end}}}]}})
        result = data["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise RuntimeError(result)
        return result["backfillId"]

    def backfill_status(self, backfill_id: str) -> str:
        data = self.graphql("""
            query($id: String!) { partitionBackfillOrError(backfillId: $id) {
              __typename ... on PartitionBackfill { status } } }""", {"id": backfill_id})
        return data["partitionBackfillOrError"]["status"]

    def runs(self, tag_key: str, tag_value: str) -> list[dict]:
        data = self.graphql("""
            query($key: String!, $value: String!) {
              runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
                ... on Runs { results { runId status jobName tags { key value } } } } }""",
                            {"key": tag_key, "value": tag_value})
        return data["runsOrError"]["results"]

    def launch_job(self, job_name: str, tags: dict[str, str] | None = None) -> str:
        """Launch a run of a job of the code location (as the UI's Launchpad does); returns its run id."""
        data = self.graphql("""
            mutation($params: ExecutionParams!) {
              launchRun(executionParams: $params) {
                __typename
                ... on LaunchRunSuccess { run { runId } }
                ... on PythonError { message }
                ... on RunConfigValidationInvalid { errors { message } }
                ... on InvalidSubsetError { message }
              }
            }""", {"params": {
                "selector": {"repositoryLocationName": "compliance", "repositoryName": "__repository__",
                             "jobName": job_name},
                "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}})
        result = data["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(result)
        return result["run"]["runId"]

    def run_status(self, run_id: str) -> str:
        data = self.graphql("""query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }""",
                            {"id": run_id})
        return data["runOrError"]["status"]

    def wait_for_run(self, run_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.run_status(run_id)
            if status in ("SUCCESS", "FAILURE", "CANCELED"):
                return status
            time.sleep(2)
        raise TimeoutError(f"run {run_id} still running after {timeout}s; log {self.log_path}")

    def run_messages(self, run_id: str, after: str | None = None) -> tuple[list[str], str | None]:
        """The log messages of a run (what the UI's run page shows) after the cursor `after`, oldest first, and the
        cursor to pass next time (a long run's log is not fetched again and again)."""
        data = self.graphql("""
            query($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after) { __typename
              ... on EventConnection { cursor events { __typename ... on MessageEvent { message } } } } }""",
                            {"id": run_id, "after": after})
        connection = data["logsForRun"]
        events = connection.get("events") or []
        return [e["message"] for e in events if e.get("message")], connection.get("cursor") or after

    def wait_for_backfill(self, backfill_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.backfill_status(backfill_id)
            if status not in ("REQUESTED", "CANCELING", "FAILING"):
                return status
            time.sleep(2)
        raise TimeoutError(f"backfill {backfill_id} still running after {timeout}s; log {self.log_path}")
