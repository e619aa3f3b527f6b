"""Second chances above the client: resume a traversal from its last cursor, repeat a failed call."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pipeline.compliance_api.errors import AuthenticationError, ServerError
from pipeline.compliance_api.resume import resumable_pages, with_second_chances


@dataclass
class FakePage:
    last_id: str | None
    records: list


def server_error():
    return ServerError("Server error (500 api_error)", status_code=500, retryable=False)


def test_traversal_resumes_from_the_last_good_cursor():
    calls, sleeps = [], []
    pages = {None: FakePage("c1", [1, 2]), "c1": FakePage("c2", [3, 4]), "c2": FakePage("c3", [5])}
    failures = {"c2": 2}

    def start(cursor):
        calls.append(cursor)
        while True:
            if failures.get(cursor, 0):
                failures[cursor] -= 1
                raise server_error()
            page = pages[cursor]
            yield page
            if cursor == "c2":
                return
            cursor = page.last_id

    records = [r for page in resumable_pages(start, attempts=3, delay=0.5, sleep=sleeps.append) for r in page.records]
    assert records == [1, 2, 3, 4, 5]
    assert calls == [None, "c2", "c2"]  # resumed twice from c2, never from the start
    assert sleeps == [0.5, 1.0]


def test_persistent_failure_still_fails_and_auth_errors_are_not_retried():
    def always_failing(cursor):
        raise server_error()
        yield

    with pytest.raises(ServerError):
        list(resumable_pages(always_failing, attempts=2, delay=0, sleep=lambda s: None))
    calls = []

    def unauthorized():
        calls.append(1)
        raise AuthenticationError("The API key provided is invalid", status_code=401)

    with pytest.raises(AuthenticationError):
        with_second_chances(unauthorized, attempts=3, delay=0, sleep=lambda s: None)
    assert calls == [1]


def test_call_is_repeated_until_it_succeeds():
    outcomes = [server_error(), server_error(), "ok"]

    def call():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    sleeps = []
    assert with_second_chances(call, attempts=3, delay=1, sleep=sleeps.append) == "ok"
    assert sleeps == [1, 2]
