"""Typed configuration: nested dataclasses from YAML, with ``--section.key=value`` overrides.

Every field is a typed dataclass field; its ``metadata["help"]`` is its documentation. Loading checks
every key and every type before any work starts: an unknown key, a value of the wrong type or an
impossible value (checked by the dataclass's ``__post_init__``) raises :class:`ConfigError` naming the
key, e.g. ``train.max_steps: expected an integer, got 'ten'``. A number is finite: ``.inf`` or ``nan`` in any
numeric field is refused (a learning rate of ``.inf`` would train a model of NaN weights).

YAML is read with YAML 1.2's booleans (only ``true``/``false``, any case): ``no``, ``off``, ``yes`` and
``on`` stay text, so that ``--train.save_strategy=no`` is the strategy ``"no"`` as typed, while a
boolean field still takes them (``--rct.enabled=yes``). A config file that cannot be read (a folder, not
UTF-8, nested too deeply, expanding to too many values) is a :class:`ConfigError` naming the file.

Its one client is :mod:`clinkd.train.config`; its tests are ``tests/test_config.py``.

Why not jsonargparse (as litgpt uses)? Tried (jsonargparse 4.53, issue 15): it reads these dataclasses and
even ``TrainingArguments``, but adopting it would change what users see and keep most of this module:

- **messages**: ours name the key in the recipe's terms and suggest the nearest one
  (``train.max_stepz: unknown key; did you mean max_steps?``, ``train.max_steps: expected an integer, got
  'ten'``); jsonargparse says ``unrecognized arguments: --train.max_stepz=3`` (no suggestion), ``Group
  'train' does not accept option 'max_stepz'`` for a file (no file named), ``Parser key
  "train.max_steps": Expected a <class 'int'>. Got value: ten``, and lets a ``__post_init__``'s error or a
  non-UTF-8 file's ``UnicodeDecodeError`` through as it is. The CLI's exit status 2 with one line naming the
  key or file (tests/train/test_hostile_train.py) would need a translation layer.
- **pipelines**: ``stages:`` is a mapping of stage names the recipe chooses, each overriding the top-level
  sections, with ``--<stage>.<section>.<key>`` overrides and ``@stage`` references; a jsonargparse parser
  is static, so the stage merging (:func:`read_yaml`, :func:`deep_merge`, :func:`parse_overrides`) stays ours.
- **YAML**: jsonargparse loads a file with YAML 1.1 booleans (``save_strategy: no`` becomes ``False``, then
  a type error); it accepts ``.inf`` for a float (only ``nan`` is refused), and expands a "billion laughs" of
  aliases before looking at the keys (10**6 values took 1.7 s, 10**8 did not finish in 2 minutes), where
  :func:`load_yaml_text` refuses more than :data:`MAX_VALUES` at once.

What jsonargparse would replace is :func:`from_dict` and :func:`coerce` (~120 lines); the rest would stay,
plus the translation of its errors: not worth a new dependency.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import enum
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import yaml

from clinkd.errors import ClinkdError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ClinkdError):
    """A configuration key that is unknown, of the wrong type or impossible."""


class _NotFinite(ConfigError):
    """A number that is infinite or NaN (preferred over a union's generic message)."""


class _InvalidYaml(ConfigError):
    """Text that does not parse as YAML."""


#: the words a boolean field takes besides true/false (YAML 1.1's booleans, which the loader keeps as text)
BOOL_WORDS = {"yes": True, "on": True, "no": False, "off": False}
#: nesting depth and (expanded) number of values a configuration may have: far above any real recipe,
#: far below what exhausts the recursion limit or the memory (a "billion laughs" of YAML aliases)
MAX_DEPTH = 64
MAX_VALUES = 100_000


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with YAML 1.2's booleans: only true/false (any case) are booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _check_shape(data: Any, where: str) -> None:
    """Refuse data nested deeper than :data:`MAX_DEPTH`, holding more than :data:`MAX_VALUES` values once
    aliases are expanded, or referring to itself (YAML anchors can do all three)."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (depth, expanded size), each container measured once
    open_: set[int] = set()
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        key = id(node)
        children = [
            c for c in (node.values() if isinstance(node, dict) else node) if isinstance(c, (dict, list))
        ]
        if done:
            open_.discard(key)
            depth = 1 + max((sizes[id(c)][0] for c in children), default=0)
            size = len(node) + sum(sizes[id(c)][1] for c in children)
            sizes[key] = (depth, size)
            if depth > MAX_DEPTH:
                raise ConfigError(f"{where}: nested more than {MAX_DEPTH} levels deep")
            if size > MAX_VALUES:
                raise ConfigError(f"{where}: more than {MAX_VALUES} values (once YAML aliases are expanded)")
            continue
        if key in sizes:
            continue
        open_.add(key)  # open: on the path from the top to the node being measured
        stack.append((node, True))
        for c in children:
            if id(c) in open_:
                raise ConfigError(f"{where}: a YAML alias refers to the value that contains it")
            stack.append((c, False))


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML ``text`` (YAML 1.2 booleans) and check its shape; errors are ConfigErrors naming ``where``."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise _InvalidYaml(f"{where}: invalid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply") from None
    _check_shape(data, where)
    return data


def help_field(default: Any = dataclasses.MISSING, help: str = "", **kw) -> Any:
    """A dataclass field with documentation (``metadata["help"]``)."""
    if isinstance(default, (list, dict, set)):

        def copy_default(d: Any = default) -> Any:
            return type(d)(d)  # a fresh container of the same type per instance

        return dataclasses.field(default_factory=copy_default, metadata={"help": help}, **kw)
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` (converting int→float, str→Enum/Path); raise ConfigError."""
    if tp is Any or tp is typing.Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, key)
            except ConfigError as err:
                errors.append(err)
        for error in errors:
            if isinstance(error, _NotFinite):
                raise error
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: expected one of {list(typing.get_args(tp))}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (arg, *_) = typing.get_args(tp) or (Any,)
        return [coerce(v, arg, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return value
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{key}: expected null, got {value!r}")
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a section (mapping), got {value!r}")
        return value  # handled by from_dict
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            try:
                return tp(value)
            except ValueError:
                raise ConfigError(f"{key}: expected one of {[e.value for e in tp]}, got {value!r}") from None
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in BOOL_WORDS:
                return BOOL_WORDS[value.lower()]
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        if tp is float:
            number = None
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = float(value)
            elif isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
                with contextlib.suppress(ValueError):
                    number = float(value)
            if number is None:
                raise ConfigError(f"{key}: expected a number, got {value!r}")
            if not math.isfinite(number):
                raise _NotFinite(f"{key}: expected a finite number, got {value!r}")
            return number
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if tp is str:
            if isinstance(value, str):
                return value
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return str(value)
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        if tp is Path:
            if isinstance(value, (str, os.PathLike)):
                return Path(value)
            raise ConfigError(f"{key}: expected a path, got {value!r}")
        if tp is dict or tp is list:
            if isinstance(value, tp):
                return value
            raise ConfigError(f"{key}: expected a {tp.__name__}, got {value!r}")
    return value  # a type we do not check (kept as given)


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested mapping, checking keys and types (see module docstring)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields), key=str)  # YAML keys may be numbers or null too
    if unknown:
        key = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        close = difflib.get_close_matches(str(unknown[0]), list(fields), n=3)
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else f"known keys: {', '.join(sorted(fields)[:40])}"
        )
        more = f" ({len(unknown) - 1} more unknown key(s))" if len(unknown) > 1 else ""
        raise ConfigError(f"{key}: unknown key; {hint}{more}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        tp = hints.get(name, Any)
        sub = _dataclass_of(tp)
        if sub is not None and isinstance(value, dict):
            kwargs[name] = from_dict(sub, value, key)
        else:
            kwargs[name] = coerce(value, tp, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{prefix or 'config'}: {err}") from None


def _dataclass_of(tp: Any) -> type[DataclassInstance] | None:
    # ``tp`` is a type hint: a dataclass in it is a class, never an instance
    if dataclasses.is_dataclass(tp):
        return cast("type[DataclassInstance]", tp)
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return cast("type[DataclassInstance]", arg)
    return None


def parse_overrides(args: list[str]) -> dict:
    """``["--train.max_steps=10", "--data.dir", "d"]`` → ``{"train": {"max_steps": 10}, "data": {"dir": "d"}}``.

    Values are read as YAML scalars (``10`` is an int, ``true`` a bool, ``null`` None, ``[a, b]`` a list).
    """
    out: dict = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) <= 2:
            raise ConfigError(f"expected an override --section.key=value, got {arg!r}")
        body = arg[2:]
        if "=" in body:
            key, raw = body.split("=", 1)
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"override {arg} has no value")
            key, raw = body, args[i + 1]
            i += 1
        i += 1
        try:
            value = load_yaml_text(raw, f"override --{key}") if raw != "" else ""
        except _InvalidYaml:  # not YAML: the text as typed
            value = raw
        if isinstance(value, str):
            try:  # YAML 1.1 reads 1e-4 as a string
                value = float(value) if any(c in value for c in "eE.") and not value.isalpha() else value
            except ValueError:
                pass
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {key}: {part} is not a section")
        node[parts[-1]] = value
    return out


def deep_merge(base: dict, extra: dict) -> dict:
    """A new mapping: ``base`` updated by ``extra``, sections merged recursively."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    """A YAML config file as a mapping (see the module docstring); a ConfigError naming the file when it
    cannot be read, is not UTF-8 YAML, or is not a mapping."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a YAML config file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: cannot read the config file (permission denied)") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); "
            "a config file is UTF-8 YAML"
        ) from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file ({err.strerror or err})") from None
    data = load_yaml_text(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return data


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain YAML-ready data (enums as values, paths as strings)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
