"""Contract §6 / §12.4: organizations and organization users (page / next_page / has_more, limits, 404)."""

from __future__ import annotations

from datetime import datetime

import pytest

ORGS = "/v1/compliance/organizations"
ROLES = {"admin", "billing", "claude_code_user", "developer", "managed", "membership_admin", "owner",
         "primary_owner", "user"}


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def page_walk(client, path: str, limit: int) -> tuple[list[dict], int]:
    items, pages, token = [], 0, None
    while True:
        params = {"limit": limit} | ({"page": token} if token else {})
        body = client.get(path, params=params).json()
        assert set(body) == {"data", "has_more", "next_page"}
        items += body["data"]
        pages += 1
        if not body["has_more"]:
            assert body["next_page"] is None
            return items, pages
        token = body["next_page"]
        assert token.startswith("page_")


@pytest.fixture(scope="module")
def orgs(api) -> list[dict]:
    return api.get(ORGS).json()["data"]


def test_organizations_shape_and_order(api, orgs):
    body = api.get(ORGS).json()
    assert body["has_more"] is False and body["next_page"] is None
    assert len(orgs) >= 2
    for o in orgs:
        assert set(o) == {"uuid", "name", "created_at"}
    keys = [ts(o["created_at"]) for o in orgs]
    assert keys == sorted(keys)


def test_organizations_paging(api, orgs):
    items, pages = page_walk(api, ORGS, 1)
    assert items == orgs and pages == len(orgs)


@pytest.mark.parametrize("value", ["0", "1001"])
def test_organizations_limit_bounds(api, check_error, value):
    check_error(api.get(ORGS, params={"limit": value}), 400, "invalid_request_error",
                f"The limit parameter must be between 1 and 1000, inclusive. Got {value}.")


def test_bad_page_tokens(api, check_error, orgs):
    check_error(api.get(ORGS, params={"page": "page_garbage"}), 400, "invalid_request_error")
    check_error(api.get(ORGS, params={"page": "nope"}), 400, "invalid_request_error")
    users_token = api.get(f"{ORGS}/{orgs[0]['uuid']}/users", params={"limit": 1}).json()["next_page"]
    check_error(api.get(ORGS, params={"page": users_token}), 400, "invalid_request_error")


def test_users_shape_default_limit_and_order(api, orgs):
    for o in orgs:
        body = api.get(f"{ORGS}/{o['uuid']}/users").json()
        users = body["data"]
        assert len(users) <= 500
        assert body["has_more"] is (len(users) == 500 and body["next_page"] is not None)
        for u in users:
            assert set(u) == {"id", "full_name", "email", "organization_role", "created_at"}
            assert u["id"].startswith("user_") and u["organization_role"] in ROLES
    first = api.get(f"{ORGS}/{orgs[0]['uuid']}/users", params={"limit": 1000}).json()["data"]
    assert len({u["id"] for u in first}) == len(first) > 5
    assert len(api.get(f"{ORGS}/{orgs[0]['uuid']}/users", params={"limit": 3}).json()["data"]) == 3


def test_users_paging_reproduces_the_join_order(api, orgs):
    path = f"{ORGS}/{orgs[0]['uuid']}/users"
    full = api.get(path, params={"limit": 1000}).json()["data"]
    items, pages = page_walk(api, path, 3)
    assert items == full and pages == (len(full) + 2) // 3


def test_users_page_token_is_bound_to_the_org(api, check_error, orgs):
    a, b = orgs[0]["uuid"], orgs[1]["uuid"]
    token = api.get(f"{ORGS}/{a}/users", params={"limit": 1}).json()["next_page"]
    assert api.get(f"{ORGS}/{a}/users", params={"page": token}).status_code == 200
    check_error(api.get(f"{ORGS}/{b}/users", params={"page": token}), 400, "invalid_request_error")


@pytest.mark.parametrize("value", ["0", "1001"])
def test_users_limit_bounds(api, check_error, orgs, value):
    check_error(api.get(f"{ORGS}/{orgs[0]['uuid']}/users", params={"limit": value}), 400, "invalid_request_error",
                f"The limit parameter must be between 1 and 1000, inclusive. Got {value}.")


def test_users_of_unknown_org_is_404(api, check_error):
    uuid = "00000000-0000-4000-8000-000000000000"
    check_error(api.get(f"{ORGS}/{uuid}/users"), 404, "not_found_error",
                f"The \"{uuid}\" organization does not exist or the requester is not authorized to access it.")
