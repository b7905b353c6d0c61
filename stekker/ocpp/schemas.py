"""Validate every frame against the official OCPP JSON schemas, compiled once with fastjsonschema.

fastjsonschema generates Python code per schema; it is roughly an order of magnitude
faster than jsonschema, which is what the `ocpp` package uses (see DESIGN.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema

from stekker.ocpp.protocol import OCPP16, OCPP21, OCPP201, ErrorCode, OcppError

_PACKAGE_DIR = {OCPP16: "v16", OCPP201: "v201", OCPP21: "v21"}

Validator = Callable[[Any], Any]


def _schema_file(protocol: str, action: str, response: bool) -> str:
    if protocol == OCPP16:
        return f"{action}Response.json" if response else f"{action}.json"
    return f"{action}Response.json" if response else f"{action}Request.json"


@cache
def known_actions(protocol: str) -> frozenset[str]:
    """Every action the version defines (in either direction)."""
    folder = resources.files("ocpp") / _PACKAGE_DIR[protocol] / "schemas"
    names = {p.name for p in folder.iterdir() if p.name.endswith(".json")}
    suffix = ".json" if protocol == OCPP16 else "Request.json"
    # 2.1's SEND messages have one schema without a Request/Response suffix
    return frozenset(
        n.removesuffix(suffix).removesuffix(".json") for n in names if not n.endswith("Response.json")
    )


@cache
def validator(protocol: str, action: str, response: bool = False) -> Validator:
    folder = resources.files("ocpp") / _PACKAGE_DIR[protocol] / "schemas"
    schema = json.loads((folder / _schema_file(protocol, action, response)).read_text("utf-8"))
    schema.pop("$id", None)
    # use_default=False: validating must not write schema defaults into what we store as sent
    return fastjsonschema.compile(schema, use_default=False)  # type: ignore[no-any-return]


_RULE_TO_CODE = {
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "required": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMAT_VIOLATION,
}


def validate(protocol: str, action: str, payload: Any, response: bool = False) -> None:
    """Raise an OcppError whose code says which kind of rule the payload broke."""
    try:
        validator(protocol, action, response)(payload)
    except fastjsonschema.JsonSchemaValueException as exc:
        code = _RULE_TO_CODE.get(exc.rule or "", ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
        field = (exc.name or "data").removeprefix("data").lstrip(".") or "payload"
        raise OcppError(code, f"{action}: {exc.message}", {"field": field, "rule": exc.rule}) from None
