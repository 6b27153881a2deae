"""The generic config engine (``clinkd.config``) on a dataclass of its own: keys, types, YAML, overrides.

``clinkd train``'s configuration is its one client (tests/train/test_config.py); what is checked here holds
for any typed config built with it.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from clinkd.config import (
    MAX_DEPTH,
    ConfigError,
    coerce,
    deep_merge,
    from_dict,
    help_field,
    load_yaml_text,
    parse_overrides,
    read_yaml,
    to_dict,
)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Inner:
    rate: float = help_field(0.1, "a rate")
    steps: int = help_field(1, "steps")
    flag: bool = help_field(False, "a flag")
    mode: Literal["a", "b"] = help_field("a", "a mode")
    color: Color = help_field(Color.RED, "a colour")
    where: Path | None = help_field(None, "a path")
    names: list[str] = help_field(["x"], "names")
    limit: float | None = help_field(None, "an optional number")
    text: str = help_field("t", "a text")

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError("steps must be >= 0")


@dataclass(frozen=True)
class Outer:
    name: str = help_field("n", "a name")
    inner: Inner = field(default_factory=Inner)


def build(data: dict) -> Outer:
    return from_dict(Outer, data)


def error_of(data: dict) -> str:
    with pytest.raises(ConfigError) as err:
        build(data)
    return str(err.value)


# -- from_dict: keys and types ------------------------------------------------------------------------------
def test_values_are_converted_to_the_field_types():
    cfg = build(
        {
            "inner": {
                "rate": 1,
                "steps": 2.0,
                "flag": "yes",
                "color": "blue",
                "where": "a/b",
                "names": ["p", "q"],
                "limit": "5e-5",
                "text": 3,
            }
        }
    )
    assert cfg.inner == Inner(
        rate=1.0,
        steps=2,
        flag=True,
        color=Color.BLUE,
        where=Path("a/b"),
        names=["p", "q"],
        limit=5e-5,
        text="3",
    )
    assert build({}) == Outer() and build({"inner": {}}).inner == Inner()


@pytest.mark.parametrize(
    "data,message",
    [
        ({"inner": {"stepz": 3}}, "inner.stepz: unknown key; did you mean steps?"),
        ({"innr": {}}, "innr: unknown key; did you mean inner?"),
        ({"inner": {"zzz": 1, "yyy": 2}}, "inner.yyy: unknown key; known keys: "),
        ({"inner": {"steps": "ten"}}, "inner.steps: expected an integer, got 'ten'"),
        ({"inner": {"steps": 1.5}}, "inner.steps: expected an integer, got 1.5"),
        ({"inner": {"steps": True}}, "inner.steps: expected an integer, got True"),
        ({"inner": {"rate": "fast"}}, "inner.rate: expected a number, got 'fast'"),
        ({"inner": {"flag": "maybe"}}, "inner.flag: expected true or false, got 'maybe'"),
        ({"inner": {"mode": "c"}}, "inner.mode: expected one of ['a', 'b'], got 'c'"),
        ({"inner": {"color": "green"}}, "inner.color: expected one of ['red', 'blue'], got 'green'"),
        ({"inner": {"names": "p"}}, "inner.names: expected a list, got 'p'"),
        ({"inner": {"names": ["p", [1]]}}, "inner.names[1]: expected a string, got [1]"),
        ({"inner": 3}, "inner: expected a section (mapping), got 3"),
        (
            {"inner": {"steps": -1}},
            "inner: steps must be >= 0",
        ),  # __post_init__'s ValueError, named by section
    ],
)
def test_a_bad_value_is_named_by_its_key(data, message):
    assert message in error_of(data)


def test_more_unknown_keys_are_counted():
    assert "(1 more unknown key(s))" in error_of({"inner": {"stepz": 1, "ratez": 2}})


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), "inf", "nan", "1e999"])
@pytest.mark.parametrize(
    "key", ["rate", "limit"]
)  # limit: float | None, whose message must not be the union's
def test_numbers_are_finite(key, value):
    assert f"inner.{key}: expected a finite number" in error_of({"inner": {key: value}})


def test_coerce_takes_the_bool_words_and_keeps_unknown_types():
    assert [coerce(v, bool, "k") for v in ("yes", "ON", "no", "Off", True)] == [
        True,
        True,
        False,
        False,
        True,
    ]
    marker = object()
    assert coerce(marker, set, "k") is marker


# -- YAML -------------------------------------------------------------------------------------------------
def test_yaml_has_yaml_1_2_booleans():
    data = load_yaml_text("a: no\nb: off\nc: yes\nd: on\ne: true\nf: FALSE\ng: True\n", "where")
    assert data == {"a": "no", "b": "off", "c": "yes", "d": "on", "e": True, "f": False, "g": True}
    assert build({"inner": {"text": data["a"], "flag": data["d"]}}).inner == Inner(text="no", flag=True)


@pytest.mark.parametrize(
    "text,message",
    [
        ("a: [", "invalid YAML"),
        ("a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels deep"),
        ("a: " + "[" * 5000 + "]" * 5000, "nested"),
        (
            "\n".join(
                ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
            ),
            "more than 100000 values",
        ),
        ("a: &t {b: *t}", "refers to the value that contains it"),
    ],
)
def test_yaml_that_cannot_be_a_config_is_refused_naming_where(text, message):
    with pytest.raises(ConfigError) as err:
        load_yaml_text(text, "recipe.yaml")
    assert str(err.value).startswith("recipe.yaml: ") and message in str(err.value)


def test_read_yaml_names_the_file(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text("inner:\n  steps: 4\n")
    assert build(read_yaml(f)).inner.steps == 4
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml(tmp_path / "empty.yaml") == {}
    cases = {
        tmp_path: "is a folder",
        tmp_path / "missing.yaml": "config file not found",
        tmp_path / "latin1.yaml": "not UTF-8 text (byte 0xe9",
        tmp_path / "list.yaml": "expected a mapping of sections",
    }
    (tmp_path / "latin1.yaml").write_bytes("a: caf\u00e9\n".encode("latin-1"))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    for path, message in cases.items():
        with pytest.raises(ConfigError) as err:
            read_yaml(path)
        assert str(err.value).startswith(str(path)) and message in str(err.value)


# -- overrides, merging, output ----------------------------------------------------------------------------
def test_parse_overrides_types():
    assert parse_overrides(["--a.b=1", "--a.c=true", "--d=null", "--e=[x, y]", "--f=1e-4"]) == {
        "a": {"b": 1, "c": True},
        "d": None,
        "e": ["x", "y"],
        "f": 1e-4,
    }
    assert parse_overrides(["--a.b", "2", "--s=no", "--t=", "--u={"]) == {
        "a": {"b": 2},
        "s": "no",
        "t": "",
        "u": "{",
    }
    for bad in (["oops"], ["--"], ["--a.b"]):
        with pytest.raises(ConfigError):
            parse_overrides(bad)
    with pytest.raises(ConfigError, match="a is not a section"):
        parse_overrides(["--a=1", "--a.b=2"])


def test_overrides_merge_into_a_file_without_changing_it():
    base = {"inner": {"steps": 1, "rate": 0.5}, "name": "x"}
    merged = deep_merge(base, parse_overrides(["--inner.steps=3"]))
    assert merged == {"inner": {"steps": 3, "rate": 0.5}, "name": "x"}
    assert base == {"inner": {"steps": 1, "rate": 0.5}, "name": "x"}


def test_to_dict_is_plain_yaml_data_and_builds_the_same_config():
    cfg = build({"inner": {"color": "blue", "where": "p", "names": ["a"]}})
    d = to_dict(cfg)
    assert d["inner"]["color"] == "blue" and d["inner"]["where"] == "p"
    assert build(d) == cfg


def test_list_defaults_are_not_shared():
    a, b = Inner(), Inner()
    a.names.append("y")
    assert b.names == ["x"]
    assert dataclasses.fields(Inner)[0].metadata["help"] == "a rate"
