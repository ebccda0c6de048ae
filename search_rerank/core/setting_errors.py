"""Settings that do not validate, told as a shop's operator needs them: one line per mistake, saying where it was
made (the settings file and its line, or the environment variable), the likely spelling of an unknown key, and
the value given, unless it is a secret.

pydantic's own text is several lines per error, ends each with a link to its documentation, names neither the
file nor the variable, and prints a password given with the wrong type as it is. It is what every entry point
used to show at start (the CLI, ``serve``, gunicorn's workers).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError

SHOWN_VALUE_CHARS = 60
"""A value longer than this is cut in the message (a whole JSON document pasted into a variable)."""


def describe(
    exc: ValidationError, model: type[BaseModel], path: Path | None, environ: Mapping[str, str], prefix: str
) -> str:
    """Each error of ``exc`` (validating ``model`` from the file at ``path``, then ``environ``'s ``prefix``
    variables) as ``where: setting: what`` on a line of its own."""
    lines = path.read_text(encoding="utf-8-sig").splitlines() if path is not None and path.is_file() else []
    return "\n".join(_line(error, model, path, lines, environ, prefix) for error in exc.errors(include_url=False))


def _line(
    error: Mapping[str, Any],
    model: type[BaseModel],
    path: Path | None,
    lines: Sequence[str],
    environ: Mapping[str, str],
    prefix: str,
) -> str:
    loc = [str(part) for part in error["loc"]]
    # The setting's own variable, or that of a section holding it as JSON (SEARCH_RERANK_FUSION='{"weights": ...}')
    variables = [prefix + "__".join(loc[:end]).upper() for end in range(len(loc), 0, -1)]
    variable = next((name for name in variables if name in environ), None)
    if variable is not None:
        where = f"environment variable {variable}"
    elif path is not None:
        line = _line_of(loc, lines, path.suffix)
        where = f"{path}:{line}" if line is not None else str(path)
    else:
        where = "settings"
    setting = ".".join(loc)
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], _fields(model, loc[:-1]), 1)
        hint = f"; did you mean {'.'.join([*loc[:-1], close[0]])}?" if close else ""
        return f"{where}: {setting}: no such setting{hint}"
    message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own refusal
    given = error.get("input")
    # a section's whole input (a check across its fields) may hold a secret: only a single value is shown
    if error["type"] != "missing" and not isinstance(given, Mapping | list) and not _secret(model, loc):
        value = repr(given)
        if len(value) > SHOWN_VALUE_CHARS:
            value = value[:SHOWN_VALUE_CHARS] + "..."
        message += f" (given {value})"
    return f"{where}: {setting}: {message}"


def _field(model: type[BaseModel], loc: Sequence[str]) -> Any:
    """The annotation at ``loc`` within ``model``, through nested sections; None when there is none."""
    annotation: Any = model
    for name in loc:
        sections = [a for a in (annotation, *get_args(annotation)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not sections or name not in sections[0].model_fields:
            return None
        annotation = sections[0].model_fields[name].annotation
    return annotation


def _fields(model: type[BaseModel], loc: Sequence[str]) -> list[str]:
    """The setting names of the section at ``loc`` (the top level when empty)."""
    section = _field(model, loc) if loc else model
    if isinstance(section, type) and issubclass(section, BaseModel):
        return list(section.model_fields)
    return []


def _secret(model: type[BaseModel], loc: Sequence[str]) -> bool:
    """Whether the setting at ``loc`` holds a secret (a ``SecretStr``), whose value is never shown; a setting
    that cannot be found (a key within a dict setting) is shown."""
    annotation = _field(model, loc)
    return annotation is not None and SecretStr in (annotation, *get_args(annotation))


def _line_of(loc: Sequence[str], lines: Sequence[str], suffix: str) -> int | None:
    """The 1-based line where a TOML or JSON settings file sets ``loc``: the key's first line after the line
    that opens its section (a ``[section]`` table or a ``"section":`` key); None when it is not found there."""
    start = 0
    for name in loc:
        key = re.escape(name)
        if suffix == ".json":
            pattern = re.compile(rf'"{key}"\s*:')
        else:  # a [section] table, or a key
            pattern = re.compile(rf"^\s*(\[\s*{key}\s*\]|{key}\s*=)")
        found = next((i for i in range(start, len(lines)) if pattern.search(lines[i])), None)
        if found is None:
            return None
        start = found
    return start + 1


def unparsed(section: str, model: type[BaseModel], environ: Mapping[str, str], prefix: str) -> str:
    """What pydantic-settings says as 'error parsing value for field "service" from source "EnvSettingsSource"',
    naming neither the variable nor what it takes: each of ``section``'s variables that sets a list, a map or a
    section, which are read as JSON, and is not JSON, one per line."""
    problems = []
    for name, value in environ.items():
        loc = name[len(prefix) :].lower().split("__") if name.upper().startswith(prefix) else []
        if not loc or loc[0] != section or not _read_as_json(_field(model, loc)):
            continue
        try:
            json.loads(value)
        except ValueError:
            shown = value if len(value) <= SHOWN_VALUE_CHARS else value[:SHOWN_VALUE_CHARS] + "..."
            example = ' a list as \'["a", "b"]\', a map as \'{"key": 1}\''
            problems.append(f"environment variable {name}: {'.'.join(loc)}: takes JSON,{example} (given {shown!r})")
    return (
        "\n".join(problems) or f"environment variable(s) {prefix}{section.upper()}...: a value is not the JSON it takes"
    )


def _read_as_json(annotation: Any) -> bool:
    """Whether a variable setting ``annotation`` is read as JSON: a list, tuple, set, map or section."""
    for kind in (annotation, *get_args(annotation)):
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            return True
        if get_origin(kind) in (list, tuple, set, frozenset, dict) or kind in (list, tuple, set, frozenset, dict):
            return True
    return False
