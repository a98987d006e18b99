"""Every setting reachable: settings by dotted key from the command line and from files.

An experiment's settings are one frozen dataclass that nests others (`ppo`, `isr`, `schedule`).
This module reads their fields, types and attribute docstrings, so that the command line's help,
its checks and its defaults all come from the dataclasses (one source):

- `assign(config, ["ppo.learning_rate=3e-4", "schedule=fading"])` sets values given as text
  (`KEY=VALUE`; a nested dataclass with a `kind` field takes a bare `KEY=KIND`);
- `load(path, cls)` reads a TOML file of settings, or a run's `config.json`, to rerun it;
- `describe(cls)` lists every key with its type, default and help.

An unknown key, a value of the wrong type or an impossible value raises ValueError naming it.
"""

import ast
import dataclasses
import inspect
import json
import textwrap
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

Config = TypeVar("Config")


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each field of the dataclass `cls`."""
    hints = typing.get_type_hints(cls)
    return {field.name: hints[field.name] for field in dataclasses.fields(cls) if field.init}


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings (the string after a field) of `cls` and its dataclass bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0].body
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def _nested_class(kind: Any) -> type | None:
    """The dataclass of a field typed `SomeConfig` or `SomeConfig | None`, else None."""
    options = typing.get_args(kind) if _is_union(kind) else (kind,)
    classes = [option for option in options if dataclasses.is_dataclass(option)]
    return classes[0] if classes else None


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _type_name(kind: Any) -> str:
    if _is_union(kind):
        return " | ".join(_type_name(option) for option in typing.get_args(kind))
    if typing.get_origin(kind) is tuple:
        return f"tuple of {_type_name(typing.get_args(kind)[0])}"
    return "none" if kind is type(None) else getattr(kind, "__name__", str(kind))


def _coerce(key: str, value: Any, kind: Any) -> Any:
    """`value` (from a file, or text from the command line) as a value of type `kind`."""
    if _is_union(kind):
        options = typing.get_args(kind)
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in options:
                return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(key, value, option)
            except ValueError:
                pass
        raise ValueError(f"{key}: expected {_type_name(kind)}, got {value!r}")
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected {_type_name(kind)}, got {value!r}")
        return tuple(_coerce(key, part, item) for part in value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                try:  # 1.2e5 written for an integer
                    number = float(value)
                except ValueError:
                    number = None
                if number is not None and number.is_integer():
                    return int(number)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"{key}: expected {_type_name(kind)}, got {value!r}")


def _replace(config: Any, changes: Mapping[str, Any], prefix: str = "") -> Any:
    """`config` with `changes` (field name -> value; nested dataclasses as mappings) applied,
    each value checked against its field's type; a ValueError names a wrong key or value."""
    kinds = field_types(type(config))
    unknown = sorted(set(changes) - set(kinds))
    if unknown:
        keys = ", ".join(f"{prefix}{name}" for name in unknown)
        known = ", ".join(describe_keys(config, prefix))
        raise ValueError(f"unknown setting(s) {keys}; known: {known}")
    values = {}
    for name, value in changes.items():
        key, kind = f"{prefix}{name}", kinds[name]
        nested = _nested_class(kind)
        if nested is not None and isinstance(value, Mapping):
            current = getattr(config, name)
            base = current if current is not None else nested()
            values[name] = _replace(base, value, f"{key}.")
        elif nested is not None and isinstance(value, str) and "kind" in field_types(nested):
            current = getattr(config, name)
            base = current if current is not None else nested()
            values[name] = _replace(base, {"kind": value}, f"{key}.")
        elif nested is not None and dataclasses.is_dataclass(value):
            values[name] = value
        else:
            values[name] = _coerce(key, value, kind)
    try:
        return dataclasses.replace(config, **values)
    except (TypeError, ValueError) as error:  # the dataclass's own checks
        where = f" ({prefix[:-1]})" if prefix else ""
        raise ValueError(f"impossible setting{where}: {error}") from None


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """`["a.b=1", "c=x"]` as the nested mapping `{"a": {"b": "1"}, "c": "x"}` (values text)."""
    tree: dict[str, Any] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        parts = key.strip().split(".")
        if not equals or not all(parts):
            raise ValueError(
                f"--set takes KEY=VALUE (e.g. ppo.learning_rate=3e-4), got {assignment!r}"
            )
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # `schedule=fading` then `schedule.fade_steps=...`
                child = node[part] = {"kind": child}
            node = child
        if isinstance(node.get(parts[-1]), dict):
            node[parts[-1]]["kind"] = value
        else:
            node[parts[-1]] = value
    return tree


def assign(config: Config, assignments: Sequence[str]) -> Config:
    """`config` with the `KEY=VALUE` texts applied (see the module doc)."""
    return _replace(config, parse_assignments(assignments))


def update(config: Config, settings: Mapping[str, Any]) -> Config:
    """`config` with a nested mapping of settings (from a file) applied."""
    return _replace(config, settings)


def load(path: str | Path, cls: type, experiment: str | None = None) -> dict[str, Any]:
    """The settings in `path`: a TOML file of settings (every key must be one of `cls`), or
    the `config.json` of a run (keys that are not settings, such as `seed_list`, are what the
    run derived from them and are left out). A run of another experiment is refused."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read the config file {path}: {error}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise ValueError(f"{path} is not valid {kind}: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a table of settings")
    if "experiment" in data:  # a run's config.json
        if experiment is not None and data["experiment"] != experiment:
            raise ValueError(
                f"{path} is the config of a {data['experiment']!r} run, not {experiment!r}"
            )
        return {key: value for key, value in data.items() if key in field_types(cls)}
    return data


def describe_keys(config: Any, prefix: str = "") -> list[str]:
    """Every setting key of `config` (a dataclass instance), nested ones dotted."""
    keys = []
    for name in field_types(type(config)):
        value = getattr(config, name)
        if dataclasses.is_dataclass(value):
            keys += describe_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def describe(config: Any, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(key, type, default, help) of every setting of `config`, nested ones dotted."""
    rows = []
    docs = field_docs(type(config))
    for name, kind in field_types(type(config)).items():
        value = getattr(config, name)
        if dataclasses.is_dataclass(value):
            rows.append((f"{prefix}{name}", "settings", "", docs.get(name, "")))
            rows += describe(value, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", _type_name(kind), value, docs.get(name, "")))
    return rows


def help_text(config: Any) -> str:
    """The settings of `config` for a command's help: one entry per key."""
    lines = []
    for key, kind, default, doc in describe(config):
        head = f"  {key}" if kind == "settings" else f"  {key} ({kind}, default {default!r})"
        lines.append(head)
        if doc:
            lines += textwrap.wrap(doc, 92, initial_indent="      ", subsequent_indent="      ")
    return "\n".join(lines)
