"""The OCPP 2.0.1 device model of a simulated station: components, their variables and the rules for
reading, writing and reporting them (GetVariables, SetVariables, GetBaseReport, GetReport).

A component is named (``OCPPCommCtrlr``, ``EVSE``, ...), optionally with an instance name and an EVSE /
connector it belongs to. Each variable of it has one attribute the simulator supports, ``Actual``, with a
mutability, a data type and, where they mean something, a unit, limits and a list of allowed values.
Component and variable descriptions arrive as the snake_case dicts the ``ocpp`` package delivers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stekker.sim.timeutil import parse_iso

__all__ = ["DeviceModel", "Variable", "component_ref", "variable_ref"]

LIST_TYPES = ("OptionList", "MemberList", "SequenceList")
SUMMARY_VARIABLES = ("AvailabilityState", "Available", "Problem")


@dataclass
class Variable:
    """One variable of one component, with its ``Actual`` value (``read`` gives a live one instead)."""

    component: str
    name: str
    value: str = ""
    mutability: str = "ReadWrite"  # ReadOnly | ReadWrite | WriteOnly
    data_type: str = "string"  # string | decimal | integer | dateTime | boolean | OptionList | ...
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: str | None = None
    instance: str | None = None
    component_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    reboot_required: bool = False
    read: Callable[[], str] | None = None

    @property
    def actual(self) -> str:
        return self.read() if self.read is not None else self.value

    def component_key(self) -> tuple[str, str | None, int | None, int | None]:
        return (self.component, self.component_instance, self.evse_id, self.connector_id)

    def component_json(self) -> dict[str, Any]:
        """The ComponentType describing this variable's component."""
        evse = None if self.evse_id is None else {"id": self.evse_id, "connector_id": self.connector_id}
        return {"name": self.component, "instance": self.component_instance, "evse": evse}

    def variable_json(self) -> dict[str, Any]:
        return {"name": self.name, "instance": self.instance}

    def report_json(self) -> dict[str, Any]:
        """The ReportDataType for NotifyReport; a WriteOnly value is never reported."""
        attribute = {
            "type": "Actual",
            "value": None if self.mutability == "WriteOnly" else self.actual,
            "mutability": self.mutability,
            "persistent": True,
            "constant": self.mutability == "ReadOnly" and self.read is None,
        }
        characteristics = {
            "data_type": self.data_type,
            "unit": self.unit,
            "min_limit": self.min_limit,
            "max_limit": self.max_limit,
            "values_list": self.values_list,
            "supports_monitoring": False,
        }
        return {
            "component": self.component_json(),
            "variable": self.variable_json(),
            "variable_attribute": [attribute],
            "variable_characteristics": characteristics,
        }

    def problem_with(self, value: str) -> str | None:
        """Why ``value`` cannot be set (a reasonCode), or None when it can."""
        if self.data_type == "boolean":
            return None if value.lower() in ("true", "false") else "InvalidValue"
        if self.data_type in ("integer", "decimal"):
            try:
                number = int(value) if self.data_type == "integer" else float(value)
            except ValueError:
                return "InvalidValue"
            return None if self._within_limits(number) else "ValueOutOfRange"
        if self.data_type == "dateTime":
            return None if parse_iso(value) is not None else "InvalidValue"
        if self.data_type in LIST_TYPES:
            items = [v.strip() for v in value.split(",") if v.strip()]
            allowed = {v.strip() for v in (self.values_list or "").split(",") if v.strip()}
            if self.data_type == "OptionList" and len(items) != 1:
                return "InvalidValue"
            return None if not allowed or set(items) <= allowed else "InvalidValue"
        return None if self._within_limits(len(value)) else "ValueOutOfRange"  # strings: limits are lengths

    def _within_limits(self, number: float) -> bool:
        too_low = self.min_limit is not None and number < self.min_limit
        too_high = self.max_limit is not None and number > self.max_limit
        return not (too_low or too_high)


def component_ref(component: dict[str, Any]) -> tuple[str, str | None, int | None, int | None]:
    """The key of a wire ComponentType (snake_case dict)."""
    evse = component.get("evse") or {}
    return (component["name"], component.get("instance"), evse.get("id"), evse.get("connector_id"))


def variable_ref(variable: dict[str, Any]) -> tuple[str, str | None]:
    return (variable["name"], variable.get("instance"))


def _result(status: str, reason: str | None = None) -> dict[str, Any]:
    return {"attribute_status": status, "attribute_status_info": {"reason_code": reason} if reason else None}


class DeviceModel:
    """All variables of a station, addressable the way GetVariables and SetVariables address them.

    ``on_change`` is called with every variable a SetVariables changed, so the station can act on it
    (restart its heartbeat timer, clear its cache, ...)."""

    def __init__(self, variables: Iterable[Variable], on_change: Callable[[Variable], None]) -> None:
        self._by_component: dict[tuple[str, str | None, int | None, int | None], list[Variable]] = {}
        for v in variables:
            self._by_component.setdefault(v.component_key(), []).append(v)
        self._on_change = on_change

    def __iter__(self) -> Any:
        for variables in self._by_component.values():
            yield from variables

    def find(
        self, component: str, name: str, *, instance: str | None = None, evse_id: int | None = None
    ) -> Variable:
        """A variable of a component (of the station, or of EVSE ``evse_id``); KeyError when unknown."""
        for v in self._by_component.get((component, None, evse_id, None), []):
            if v.name == name and v.instance == instance:
                return v
        raise KeyError(f"{component}.{name}" + (f"[{instance}]" if instance else ""))

    def integer(self, component: str, name: str, instance: str | None = None, default: int = 0) -> int:
        try:
            return int(self.find(component, name, instance=instance).actual)
        except (KeyError, ValueError):
            return default

    def boolean(self, component: str, name: str) -> bool:
        return self.find(component, name).actual.lower() == "true"

    def members(self, component: str, name: str) -> list[str]:
        """The items of a list variable (MemberList, SequenceList)."""
        return [v.strip() for v in self.find(component, name).actual.split(",") if v.strip()]

    def assign(self, component: str, name: str, value: str) -> None:
        """Change a variable from the station's side (no validation, no ``on_change``)."""
        self.find(component, name).value = value

    # ---- GetVariables / SetVariables ----------------------------------------------------------

    def _locate(self, component: dict[str, Any], variable: dict[str, Any]) -> Variable | str:
        """The variable addressed, or the status saying why there is none."""
        candidates = self._by_component.get(component_ref(component))
        if candidates is None:
            return "UnknownComponent"
        wanted = variable_ref(variable)
        for v in candidates:
            if (v.name, v.instance) == wanted:
                return v
        return "UnknownVariable"

    def _address(self, item: dict[str, Any], refused: str) -> tuple[dict[str, Any], Variable | None]:
        """The result fields that echo ``item``, and the variable it addresses; no variable (and the
        result saying why) when it is unknown, not the Actual attribute, or ``refused`` (the mutability
        the operation may not touch: WriteOnly for reading, ReadOnly for writing)."""
        attribute_type = item.get("attribute_type") or "Actual"
        echo = {
            "component": item["component"],
            "variable": item["variable"],
            "attribute_type": attribute_type,
        }
        found = self._locate(item["component"], item["variable"])
        if isinstance(found, str):
            return {**echo, **_result(found)}, None
        if attribute_type != "Actual":
            return {**echo, **_result("NotSupportedAttributeType")}, None
        if found.mutability == refused:
            return {**echo, **_result("Rejected", refused)}, None
        return echo, found

    def get(self, item: dict[str, Any]) -> dict[str, Any]:
        """One GetVariableResultType for one GetVariableDataType."""
        echo, found = self._address(item, refused="WriteOnly")
        if found is None:
            return echo
        return {**echo, **_result("Accepted"), "attribute_value": found.actual}

    def set(self, item: dict[str, Any]) -> dict[str, Any]:
        """Apply one SetVariableDataType; returns its SetVariableResultType."""
        echo, found = self._address(item, refused="ReadOnly")
        if found is None:
            return echo
        value = str(item["attribute_value"])
        problem = found.problem_with(value)
        if problem is not None:
            return {**echo, **_result("Rejected", problem)}
        found.value = value.lower() if found.data_type == "boolean" else value
        self._on_change(found)
        return {**echo, **_result("RebootRequired" if found.reboot_required else "Accepted")}

    # ---- reports ------------------------------------------------------------------------------

    def base_report(self, report_base: str) -> list[Variable]:
        """The variables of a GetBaseReport: FullInventory, ConfigurationInventory (what can be set) or
        SummaryInventory (availability and problems)."""
        if report_base == "ConfigurationInventory":
            return [v for v in self if v.mutability != "ReadOnly"]
        if report_base == "SummaryInventory":
            return [v for v in self if v.name in SUMMARY_VARIABLES]
        return list(self)

    def custom_report(
        self, component_variables: list[dict[str, Any]] | None, criteria: list[str] | None
    ) -> list[Variable]:
        """The variables of a GetReport: those matching any of ``component_variables`` (a component
        without instance or EVSE matches all of them; without a variable, all its variables), of
        components meeting every one of ``criteria`` (Active, Available, Enabled, Problem: the component
        has that variable and it is true)."""
        chosen = [
            v for v in self if not component_variables or any(_matches(v, cv) for cv in component_variables)
        ]
        if criteria:
            chosen = [v for v in chosen if all(self._meets(v, criterion) for criterion in criteria)]
        return chosen

    def _meets(self, v: Variable, criterion: str) -> bool:
        siblings = self._by_component.get(v.component_key(), [])
        return any(s.name == criterion and s.actual.lower() == "true" for s in siblings)


def _matches(v: Variable, component_variable: dict[str, Any]) -> bool:
    name, instance, evse_id, connector_id = component_ref(component_variable["component"])
    if v.component != name or (instance is not None and instance != v.component_instance):
        return False
    if evse_id is not None and (evse_id != v.evse_id or connector_id not in (None, v.connector_id)):
        return False
    variable = component_variable.get("variable")
    if variable is None:
        return True
    return (v.name, v.instance) == (variable["name"], variable.get("instance")) or (
        variable.get("instance") is None and v.name == variable["name"]
    )
