"""json_input.loads: the bounds hold whether or not the tree is walked after parsing."""

from __future__ import annotations

import json

import pytest

from service.domain import json_input


def nested(depth: int, *, opener: str = '{"a": ', closer: str = "}") -> str:
    return opener * depth + "1" + closer * depth


@pytest.mark.parametrize("data", [nested(3), nested(3).encode(), nested(3).encode("utf-16")])
def test_a_shallow_document_parses_as_json_loads_does(data):
    assert json_input.loads(data, max_depth=3) == json.loads(data)


@pytest.mark.parametrize(
    "data", [nested(4), nested(4).encode("utf-16"), nested(4, opener="[", closer="]")]
)
def test_one_level_too_many_is_refused(data):
    with pytest.raises(json_input.JSONRefused, match="nested more than 3 levels"):
        json_input.loads(data, max_depth=3)


def test_brackets_inside_strings_count_no_level():
    data = json.dumps({"a": "{[" * 50, "b": ["[{"]})
    assert json_input.loads(data, max_depth=2) == json.loads(data)


@pytest.mark.parametrize("number", ["1e400", "-1e400", "9" * 5000])
def test_a_number_out_of_range_is_refused_naming_its_key(number):
    with pytest.raises(json_input.JSONRefused, match="out of range") as refused:
        json_input.loads('{"ok": 1, "bad": [' + number + "]}", max_depth=64)
    assert refused.value.key == "bad"


@pytest.mark.parametrize("data", ["NaN", '{"a": Infinity}', "{", b"\xff"])
def test_what_is_not_json_is_refused(data):
    with pytest.raises(json_input.JSONRefused):
        json_input.loads(data, max_depth=64)
