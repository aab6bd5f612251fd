"""The access filter is built from the Principal only: hostile group names and clearances grant less, never more,
and no user text reaches the expression."""

from __future__ import annotations

import pytest

from core.auth import Principal, principal_from_claims
from core.search._access import access_filter, principal_for, sql_literal, valid_group

HOSTILE_GROUPS = [
    "x') OR 1=1 --",
    "eng']) OR clearance_level <= 3 OR array_has_any(access_groups, ['executives",
    "executives' OR 'a'='a",
    "EXECUTIVES",  # upper case is not a valid stored group name
    "a" * 65,
    "",
    "hr\n",
    "hr;drop",
    "../hr",
]


def test_expression_lists_only_valid_groups_and_the_clearance():
    f = access_filter(Principal(sub="u", groups=frozenset({"engineering", "hr"}), clearance=2))
    assert f.groups == ("all-staff", "engineering", "hr")
    assert f.expression == ("array_has_any(access_groups, ['all-staff', 'engineering', 'hr']) "
                            "AND clearance_level <= 2")


@pytest.mark.parametrize("group", HOSTILE_GROUPS)
def test_hostile_group_names_are_dropped_not_escaped_into_power(group):
    f = access_filter(Principal(sub="u", groups=frozenset({group, "support"}), clearance=1))
    assert f.groups == ("all-staff", "support")
    assert f.expression.count("'") == 4
    assert f.expression.endswith("AND clearance_level <= 1")
    assert not f.allows(["executives"], 0)


@pytest.mark.parametrize("clearance", [4, 99, -1, True, "3", 2.5, None])
def test_out_of_range_or_wrong_type_clearance_means_public_only(clearance):
    f = access_filter(Principal(sub="u", groups=frozenset(), clearance=clearance))
    assert f.clearance == 0 and f.expression.endswith("clearance_level <= 0")


def test_claims_with_hostile_values_never_widen_access():
    # (the claim parser lower-cases and strips names, so "EXECUTIVES" and "hr\n" are legitimate spellings there)
    hostile = [g for g in HOSTILE_GROUPS if g.strip().lower() != g.lower() or g.islower() or not g]
    hostile = [g for g in hostile if g not in ("EXECUTIVES", "hr\n")]
    p = principal_from_claims({"sub": "x", "groups": hostile + ["marketing"], "clearance": "9"})
    f = access_filter(p)
    assert f.groups == ("all-staff", "marketing") and f.clearance == 0


def test_the_filter_refuses_anything_but_a_principal():
    with pytest.raises(TypeError):
        access_filter({"groups": ["executives"], "clearance": 3})


def test_allows_mirrors_the_expression():
    f = access_filter(Principal(sub="u", groups=frozenset({"hr"}), clearance=2))
    assert f.allows(["hr"], 2) and f.allows(["all-staff"], 0)
    assert not f.allows(["hr"], 3) and not f.allows(["executives"], 1) and not f.allows([], 0)
    assert not f.allows(["hr"], "not a number")


def test_sql_literal_doubles_quotes_and_refuses_control_characters():
    assert sql_literal("o'brien") == "'o''brien'"
    for bad in ("a\\b", "a\x00", "line\nbreak"):
        with pytest.raises(ValueError):
            sql_literal(bad)


def test_valid_group_pattern():
    assert valid_group("people-managers") and valid_group("it.admins_2")
    assert not any(valid_group(g) for g in HOSTILE_GROUPS)


def test_cli_principal_validates_groups_and_clearance():
    p = principal_for("cli:me", "engineering, hr", 2)
    assert p.groups == frozenset({"engineering", "hr", "all-staff"}) and p.clearance == 2
    with pytest.raises(ValueError, match="invalid group"):
        principal_for("cli:me", "eng') OR 1=1 --", 1)
    for bad in (4, -1, True):
        with pytest.raises(ValueError, match="clearance"):
            principal_for("cli:me", "hr", bad)
