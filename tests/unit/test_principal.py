"""`principal_from_claims`: malformed or hostile claims must grant less, never more."""

from __future__ import annotations

import pytest

from core.auth import ALL_STAFF, MAX_CLEARANCE, ROLE_GROUPS, AuthError, Principal, principal_from_claims

pytestmark = pytest.mark.timeout(30)


def claims(**overrides) -> dict:
    base = {"sub": "alice.engineer@keel.dev", "email": "alice.engineer@keel.dev", "name": "Alice Chen",
            "groups": ["engineering"], "clearance": 2}
    base.update(overrides)
    return base


def test_good_claims():
    principal = principal_from_claims(claims())
    assert principal == Principal(
        sub="alice.engineer@keel.dev", email="alice.engineer@keel.dev", name="Alice Chen",
        groups=frozenset({"engineering", ALL_STAFF}), clearance=2, roles=frozenset({"member", "developer"}),
        workspace=None,
    )
    assert principal.display_name == "Alice Chen" and principal.clearance_name == "confidential"
    assert principal.has_role("developer") and not principal.has_role("admin", "hr")


def test_claims_may_be_any_mapping_and_are_not_mutated():
    original = claims(groups=["hr"])
    snapshot = {k: (list(v) if isinstance(v, list) else v) for k, v in original.items()}
    principal = principal_from_claims(tuple(original.items()))
    assert principal.groups == {"hr", ALL_STAFF}
    assert original == snapshot


def test_the_principal_is_immutable():
    principal = principal_from_claims(claims())
    with pytest.raises(AttributeError):
        principal.clearance = 3  # type: ignore[misc]
    assert isinstance(principal.groups, frozenset) and isinstance(principal.roles, frozenset)


@pytest.mark.parametrize("raw, expected", [
    ("engineering,hr", {"engineering", "hr"}),
    (" engineering , hr ,, ", {"engineering", "hr"}),
    ("Engineering", {"engineering"}),
    ("", set()),
    (["Support", "  marketing  "], {"support", "marketing"}),
    (("hr",), {"hr"}),
    ({"executives"}, {"executives"}),
    (["people-managers", "team_a", "v1.2"], {"people-managers", "team_a", "v1.2"}),
])
def test_groups_in_every_reasonable_shape(raw, expected):
    assert principal_from_claims(claims(groups=raw)).groups == expected | {ALL_STAFF}


HOSTILE_GROUPS = [
    "engineering' OR '1'='1",
    "x'); DROP TABLE documents; --",
    "hr\" OR \"\"=\"",
    "executives; DELETE FROM acl",
    "it-admins--",  # allowed characters only, but not a real group: kept, and grants no role
    "a" * 65,
    "e" * 10_000,
    "engineering\x00admin",
    "hr\nexecutives",
    "group with spaces",
    "*",
    "%",
    "../it-admins",
    "executives/../../",
    "<script>",
]


@pytest.mark.parametrize("bad", HOSTILE_GROUPS)
def test_hostile_group_names_are_dropped(bad):
    principal = principal_from_claims(claims(groups=["marketing", bad]))
    groups = principal.groups - {ALL_STAFF, "marketing"}
    if bad == "it-admins--":
        assert groups == {"it-admins--"} and principal.roles == {"member"}
    else:
        assert groups == set(), f"{bad!r} must not become a group"
        assert principal.roles == {"member"}
    assert all(len(g) <= 64 for g in principal.groups)


def test_a_group_of_exactly_64_characters_is_kept_and_65_is_not():
    assert "g" * 64 in principal_from_claims(claims(groups=["g" * 64])).groups
    assert principal_from_claims(claims(groups=["g" * 65])).groups == {ALL_STAFF}


@pytest.mark.parametrize("bad", [
    [1, 2.5, True, None],
    [["executives"]],
    [("it-admins",)],
    [{"name": "executives"}],
    [b"executives"],
    {"executives": True},
    42,
    3.5,
    True,
    b"executives",
    object(),
])
def test_non_string_groups_are_dropped(bad):
    principal = principal_from_claims(claims(groups=bad))
    assert principal.groups == {ALL_STAFF}
    assert principal.roles == {"member"}


def test_good_groups_survive_next_to_bad_ones():
    principal = principal_from_claims(claims(groups=["hr", ["executives"], 7, "x'; --", "support"]))
    assert principal.groups == {"hr", "support", ALL_STAFF}
    assert principal.roles == {"member", "hr", "support_agent"}


@pytest.mark.parametrize("raw, expected", [
    (0, 0), (1, 1), (2, 2), (3, 3),
    ("3", 3), ("2", 2), (" 1 ", 1), ("0", 0),
    (2.9, 2),  # truncated: never rounded up past what the claim says
    (True, 0), (False, 0),
    (-1, 0), (-3, 0), (4, 0), (99, 0), (10**100, 0), ("99", 0), ("-1", 0),
    (None, 0), ("", 0), ("top-secret", 0), ("3.0", 0), ("0x3", 0), ("restricted", 0),
    ([3], 0), ({"level": 3}, 0), (float("nan"), 0),
])
def test_clearance_is_coerced_to_a_safe_value(raw, expected):
    principal = principal_from_claims(claims(clearance=raw))
    assert principal.clearance == expected
    assert 0 <= principal.clearance <= MAX_CLEARANCE
    assert principal.clearance_name  # always a known level name


def test_missing_clearance_is_public():
    c = claims()
    del c["clearance"]
    assert principal_from_claims(c).clearance == 0


@pytest.mark.parametrize("raw", [float("inf"), float("-inf")])
def test_infinite_clearance_is_public(raw):
    assert principal_from_claims(claims(clearance=raw)).clearance == 0


@pytest.mark.parametrize("bad", [
    {},
    {"email": "x@keel.dev", "groups": ["executives"], "clearance": 3},
    {"sub": ""},
    {"sub": "   "},
    {"sub": None},
    None,
])
def test_a_missing_subject_is_an_auth_error(bad):
    with pytest.raises(AuthError, match="no subject"):
        principal_from_claims(bad)


def test_the_subject_is_stripped():
    assert principal_from_claims(claims(sub="  alice  ")).sub == "alice"


@pytest.mark.parametrize("groups", [None, [], "", ["nonsense"], [ALL_STAFF], 12])
def test_all_staff_is_always_added(groups):
    principal = principal_from_claims(claims(groups=groups))
    assert ALL_STAFF in principal.groups
    assert principal.roles >= {"member"}


@pytest.mark.parametrize("groups, roles", [
    (["engineering"], {"member", "developer"}),
    (["it-admins"], {"member", "admin", "developer"}),
    (["executives"], {"member", "admin"}),
    (["support"], {"member", "support_agent"}),
    (["hr"], {"member", "hr"}),
    (["people-managers"], {"member"}),
    (["marketing"], {"member"}),
    ([], {"member"}),
    (["hr", "support", "engineering"], {"member", "hr", "support_agent", "developer"}),
    ("EXECUTIVES", {"member", "admin"}),
])
def test_roles_are_derived_from_groups(groups, roles):
    assert principal_from_claims(claims(groups=groups)).roles == roles


def test_roles_cannot_be_claimed_directly():
    principal = principal_from_claims(claims(groups=["marketing"], roles=["admin"], role="admin", admin=True))
    assert principal.roles == {"member"}
    assert not principal.has_role("admin")


def test_every_role_group_is_a_valid_group_name():
    for role, needed in ROLE_GROUPS.items():
        for group in needed:
            assert role in principal_from_claims(claims(groups=[group])).roles


def test_email_and_name_are_strings_even_when_claims_are_not():
    principal = principal_from_claims(claims(email=None, name=12345))
    assert principal.email == "" and principal.name == "12345"
    assert principal.display_name == "12345"
    assert principal_from_claims({"sub": "only-sub"}).display_name == "only-sub"
