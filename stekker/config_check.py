"""What a person wrote in `stekker.toml` and in `STEKKER_*` variables, checked against the
settings that exist, so that a typo is caught where it was made.

pydantic-settings ignores what it does not know: a misspelt `databse_url` in the file would
start the server on a fresh `./stekker.db` beside the real database. Here a file with an
unknown key or a syntax error stops the start with one line naming the file, the line or key,
and the nearest known setting; an unknown variable is reported too (the environment carries
much else, so that is a warning).
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

PREFIX = "STEKKER_"

#: `STEKKER_*` variables that are not settings but are read by name elsewhere: the CLI's
#: address of the API, and the test suite's PostgreSQL and browser.
OTHER_VARIABLES = frozenset({"STEKKER_API_URL", "STEKKER_TEST_POSTGRES_URL", "STEKKER_CHROMIUM"})

# words in a setting's name whose value is never repeated in a message (logs, terminals)
_SECRET_WORDS = ("token", "key", "password", "secret")


log = logging.getLogger("stekker.config")

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class SettingsError(ValueError):
    """The settings cannot be used as given. The message is one line for a person: which file
    or variable, what is wrong, and what was probably meant."""


def _nearest(name: str, known: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return match[0] if match else None


def read_settings_file(path: Path, known: Iterable[str]) -> dict[str, Any] | None:
    """The settings in the TOML file at `path` (None: there is none), each key a known setting.

    Keys are matched without regard to case, as pydantic-settings does."""
    if not path.is_file():
        return None
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
        raise SettingsError(f"{path.resolve()} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise SettingsError(f"{path.resolve()} cannot be read: {exc.strerror or exc}") from None
    names = {name.lower() for name in known}
    problems = []
    for key in data:
        if key.lower() in names:
            continue
        near = _nearest(key.lower(), names)
        problems.append(
            f"unknown setting {key!r} (did you mean {near!r}?)"
            if near
            else f"unknown setting {key!r} (the README lists every setting)"
        )
    if problems:
        raise SettingsError(f"{path.resolve()}: " + "; ".join(problems))
    return data


def unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """One warning for each `STEKKER_*` variable that no setting reads, naming the nearest."""
    settings = {PREFIX + name.upper() for name in known}
    warnings = []
    for variable in sorted(environ):
        name = variable.upper()
        if not name.startswith(PREFIX) or name in settings or name in OTHER_VARIABLES:
            continue
        near = _nearest(name, settings)
        hint = f"; did you mean {near}?" if near else ""
        warnings.append(f"{variable} is not a Stekker setting and is ignored{hint}")
    return warnings


def _where(field: str, environ: Mapping[str, str], file: Path) -> str:
    """Which source gave `field` its value: the variable wins over the file, as in Settings."""
    variable = PREFIX + field.upper()
    if any(name.upper() == variable for name in environ):
        return variable
    return f"{field} in {file}"


def describe(exc: ValidationError, environ: Mapping[str, str], file: Path) -> str:
    """A validation error as one line: each bad setting with where it came from and why."""
    parts = []
    for error in exc.errors():
        reason = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names them
            parts.append(reason)
            continue
        field = str(error["loc"][0])
        value = error.get("input")
        shown = "" if any(word in field for word in _SECRET_WORDS) else f" (got {value!r})"
        parts.append(f"{_where(field, environ, file)}: {reason}{shown}")
    return "; ".join(parts)


def load(settings_cls: type[SettingsT], file: Path, environ: Mapping[str, str] | None = None) -> SettingsT:
    """`settings_cls()` read from the environment and `file`, after the file passed
    `read_settings_file`; an invalid value is a `SettingsError` saying where it came from."""
    read_settings_file(file, settings_cls.model_fields)
    try:
        return settings_cls()
    except ValidationError as exc:
        raise SettingsError(describe(exc, os.environ if environ is None else environ, file)) from None


def warn_unknown_variables(known: Iterable[str], environ: Mapping[str, str] | None = None) -> None:
    """Log `unknown_variables` as warnings."""
    for warning in unknown_variables(os.environ if environ is None else environ, known):
        log.warning("%s", warning)
