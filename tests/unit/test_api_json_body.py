"""The one JSON body parser every API route uses: what it refuses (with BodyError 400) and what it lets through."""

from __future__ import annotations

import json

import pytest

from core.api._http import MAX_JSON_DEPTH, BodyError, parse_json_object


@pytest.mark.parametrize("raw, fragment", [
    (b"[" * 30_000 + b"]" * 30_000, "nested deeper"),
    (b'{"a": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested deeper"),
    (b'{"a": ' + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}", "nested deeper"),  # under the C limit
    (b'{"k": ' + b"9" * 5_001 + b"}", "a number with 5,001 characters"),
    (b'{"k": -' + b"9" * 200 + b"}", "a number with 201 characters"),
    (b'{"k": 1.' + b"5" * 300 + b"}", "a number with"),
    (b'{"q": "a\\ud800b"}', "lone surrogate"),
    (b'{"q": ["ok", {"deeper": "\\udc00"}]}', "lone surrogate"),
    (b'{"\\ud800": "key"}', "lone surrogate"),
    (b'{"q": "\xff"}', "not UTF-8"),
    (b"{", "not valid JSON"),
    (b"", "not valid JSON"),
    (b"[1]", "must be a JSON object"),
])
def test_bad_bodies_are_a_400_naming_the_problem(raw, fragment):
    with pytest.raises(BodyError) as error:
        parse_json_object(raw)
    assert error.value.status == 400 and fragment in str(error.value)


def test_good_bodies_parse_as_before():
    body = {"q": "naïve 🙂 \u4e2d", "k": 5, "t": 0.7, "big": 10**50, "nested": [[{"x": [1, 2]}]], "n": None}
    assert parse_json_object(json.dumps(body).encode()) == body
    assert parse_json_object(b'{"q": "\\ud83d\\ude42"}') == {"q": "🙂"}  # a surrogate *pair* is one character
    depth = MAX_JSON_DEPTH - 1
    assert parse_json_object(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")


def test_lone_surrogates_can_be_let_through_where_the_caller_sanitises():
    assert parse_json_object(b'{"q": "a\\ud800"}', allow_lone_surrogates=True) == {"q": "a\ud800"}
