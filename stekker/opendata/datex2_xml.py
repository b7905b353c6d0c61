"""DATEX II v3, AFIR profile 01-00-00: the XML form, written from the JSON form (`datex2`).

DATEX II is defined in XML; its JSON encoding mirrors the XML, so one mapping turns the JSON
records into XML and back (`xml_to_json` inverts `*_xml`, which the tests use to prove the
mapping loses nothing). The rules, as the DATEX II v3 XML schemas write them:

- each element is qualified with the namespace of the class that declares it: an
  EnergyInfrastructureSite's `name`, `lastUpdated`, `operatingHours`, `locationReference` and
  `operator` come from afac:FacilityObject (`afac:`), its stations from the site (`aegi:`);
  children follow the schema's order, base class first;
- `idG`/`versionG` are the attributes `id`/`version`; `extendedValueG` is the attribute
  `_extendedValue` and the enumeration literal `extendedG` is `_extended`; a
  publication's `lang` and the payload's `modelBaseVersionG`, `profileNameG`, `profileVersionG`
  are attributes of `d2:payload` (`con:payload` in a message container); `order` of an address
  line and `lang` of a multilingual value are attributes too;
- an enumeration `{"value": x}` is the element's text; a multilingual string is
  `<com:values><com:value lang="nl">…</com:value></com:values>`; a list is the element repeated;
- a member named after its class with a namespace prefix (`aegiElectricChargingPoint`,
  `afacOpenAllHours`, `locPointLocation`, `comDayWeekMonth`) is the element of the enclosing
  key with `xsi:type="aegi:ElectricChargingPoint"` and so on;
- an extension (`locLocationExtensionG: {"FacilityLocation": …}`) is
  `<loc:_locationExtension><loc:facilityLocation>…` (the extension type's element is declared
  in the extended class's namespace, its content in the extension's: `locx:`);
- a reference's `targetClass` is the qualified class name (`afac:FacilityObject`,
  `aegi:EnergyRate`, `aegi:EnergyInfrastructureTable`), fixed in the schema.

The message container's `ex:exchangeInformation` carries the `modelBaseVersion="3"` the DATEX
II exchange schema requires (the JSON schema has no place for it). Where these rules rest on
the DATEX II v3 conventions and the profile's older XML schemas rather than on the 01-00-00
XSD (not published with the JSON schemas): the element order within a class and the name and
namespace of the extension element.

Text is escaped (`&`, `<`, `>`, and in attributes `"` and white space) and carried as UTF-8;
characters XML 1.0 cannot carry never reach here (`datex2` drops them from every text).
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from stekker.opendata import datex2
from stekker.opendata.model import Publisher

NAMESPACES: Mapping[str, str] = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "con": "http://datex2.eu/schema/3/messageContainer",
    "ex": "http://datex2.eu/schema/3/exchangeInformation",
    "com": "http://datex2.eu/schema/3/common",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
    "locx": "http://datex2.eu/schema/3/locationExtension",
    "afac": "http://datex2.eu/schema/3/afirFacilities",
    "aegi": "http://datex2.eu/schema/3/afirEnergyInfrastructure",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
_PREFIX_OF = {uri: prefix for prefix, uri in NAMESPACES.items()}
#: JSON prefixes of class-named members, longest first (locx before loc).
_CLASS_PREFIXES = ("aegi", "afac", "locx", "loc", "com")
#: A reference's JSON targetClass → the qualified class name the XML schema fixes.
TARGET_CLASS: Mapping[str, str] = {
    "FacilityObject": "afac:FacilityObject",
    "EnergyRate": "aegi:EnergyRate",
    "EnergyInfrastructureTable": "aegi:EnergyInfrastructureTable",
}
_XSI_TYPE = f"{{{NAMESPACES['xsi']}}}type"
#: An enumeration's "extended" literal: JSON writes it extendedG, the XML schemas _extended.
_EXTENDED = "_extended"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

# kinds of values
TEXT, INT, NUM, BOOL, ENUM, MLS, OBJ, CHOICE, REF, EXT = (
    "text", "int", "num", "bool", "enum", "mls", "obj", "choice", "ref", "ext",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Field:
    """One member of a class: its JSON key, the element's namespace prefix and local name,
    what kind of value it holds, the class of an object value, and whether it repeats."""

    key: str
    ns: str
    kind: str
    cls: str = ""
    many: bool = False
    name: str = ""
    tag: str = field(init=False)
    clark: str = field(init=False)  # {namespace}name, as ElementTree reads it

    def __post_init__(self) -> None:
        local = self.name or self.key
        object.__setattr__(self, "tag", f"{self.ns}:{local}")
        object.__setattr__(self, "clark", f"{{{NAMESPACES[self.ns]}}}{local}")


@dataclass(frozen=True, slots=True)
class Cls:
    """A class: its members in schema order and its XML attributes (JSON key, name, kind)."""

    fields: tuple[Field, ...]
    attrs: tuple[tuple[str, str, str], ...] = ()
    by_clark: dict[str, Field] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_clark", {f.clark: f for f in self.fields})


def F(key: str, ns: str, kind: str, cls: str = "", *, many: bool = False, name: str = "") -> Field:
    return Field(key, ns, kind, cls, many, name)


_ID = (("idG", "id", TEXT), ("versionG", "version", TEXT))
# afac:FacilityObject's members that we write, in its order (attributes, then associations)
_FACILITY_OBJECT = (
    F("name", "afac", MLS),
    F("lastUpdated", "afac", TEXT),
    F("externalIdentifier", "afac", OBJ, "ExternalIdentifier", many=True),
    F("operatingHours", "afac", CHOICE),
    F("locationReference", "afac", CHOICE),
    F("operator", "afac", CHOICE),
)
_FACILITY_OBJECT_STATUS = (F("reference", "afac", REF), F("lastUpdated", "afac", TEXT))

CLASSES: Mapping[str, Cls] = {
    # --- common ---
    "InternationalIdentifier": Cls((F("country", "com", TEXT), F("nationalIdentifier", "com", TEXT))),
    "HeaderInformation": Cls((F("confidentiality", "com", ENUM), F("informationStatus", "com", ENUM))),
    "OverallPeriod": Cls(
        (
            F("overallStartTime", "com", TEXT),
            F("overallEndTime", "com", TEXT),
            F("validPeriod", "com", OBJ, "Period", many=True),
            F("exceptionPeriod", "com", OBJ, "Period", many=True),
        )
    ),
    "Period": Cls(
        (
            F("startOfPeriod", "com", TEXT),
            F("endOfPeriod", "com", TEXT),
            F("recurringTimePeriodOfDay", "com", OBJ, "TimePeriodOfDay", many=True),
            F("recurringDayWeekMonthPeriod", "com", CHOICE, many=True),
        )
    ),
    "TimePeriodOfDay": Cls((F("startTimeOfPeriod", "com", TEXT), F("endTimeOfPeriod", "com", TEXT))),
    "DayWeekMonth": Cls((F("applicableDay", "com", ENUM, many=True),)),
    # --- location referencing ---
    "PointLocation": Cls(
        (
            F("coordinatesForDisplay", "loc", OBJ, "PointCoordinates"),
            F("locLocationExtensionG", "loc", EXT, name="_locationExtension"),
            F("pointByCoordinates", "loc", OBJ, "PointByCoordinates"),
        )
    ),
    "PointCoordinates": Cls((F("latitude", "loc", NUM), F("longitude", "loc", NUM))),
    "PointByCoordinates": Cls((F("pointCoordinates", "loc", OBJ, "PointCoordinates"),)),
    "FacilityLocation": Cls((F("timeZone", "locx", TEXT), F("address", "locx", OBJ, "Address"))),
    "Address": Cls(
        (
            F("postcode", "locx", TEXT),
            F("city", "locx", MLS),
            F("countryCode", "locx", TEXT),
            F("addressLine", "locx", OBJ, "AddressLine", many=True),
        )
    ),
    "AddressLine": Cls((F("type", "locx", ENUM), F("text", "locx", MLS)), (("order", "order", INT),)),
    # --- facilities ---
    "OpenAllHours": Cls(()),
    "UnknownOperatingHours": Cls(()),
    "OperatingHoursSpecification": Cls(
        (
            F("operatingAllYear", "afac", BOOL),
            F("overallPeriod", "afac", OBJ, "OverallPeriod"),
        ),
        _ID,
    ),
    "AnOrganisation": Cls(
        (
            F("name", "afac", MLS),
            F("legalName", "afac", MLS),
            F("externalIdentifier", "afac", OBJ, "ExternalIdentifier", many=True),
        )
    ),
    "ExternalIdentifier": Cls((F("identifier", "afac", TEXT), F("typeOfIdentifier", "afac", ENUM))),
    # --- energy infrastructure: table ---
    "EnergyInfrastructureTablePublication": Cls(
        (
            F("publicationTime", "com", TEXT),
            F("publicationCreator", "com", OBJ, "InternationalIdentifier"),
            F("headerInformation", "aegi", OBJ, "HeaderInformation"),
            F("energyInfrastructureTable", "aegi", OBJ, "EnergyInfrastructureTable", many=True),
        ),
        (("lang", "lang", TEXT),),
    ),
    "EnergyInfrastructureTable": Cls(
        (
            F("tableName", "aegi", TEXT),
            F("energyInfrastructureSite", "aegi", OBJ, "EnergyInfrastructureSite", many=True),
        ),
        _ID,
    ),
    "EnergyInfrastructureSite": Cls(
        (
            *_FACILITY_OBJECT,
            F("typeOfSite", "aegi", ENUM),
            F("energyInfrastructureStation", "aegi", OBJ, "EnergyInfrastructureStation", many=True),
        ),
        _ID,
    ),
    "EnergyInfrastructureStation": Cls(
        (
            *_FACILITY_OBJECT,
            F("totalMaximumPower", "aegi", NUM),
            F("authenticationAndIdentificationMethods", "aegi", ENUM, many=True),
            F("numberOfRefillPoints", "aegi", INT),
            F("serviceType", "aegi", OBJ, "ServiceType", many=True),
            F("refillPoint", "aegi", CHOICE, many=True),
        ),
        _ID,
    ),
    "ServiceType": Cls((F("serviceType", "aegi", ENUM),)),
    "ElectricChargingPoint": Cls(
        (
            *_FACILITY_OBJECT,
            F("deliveryUnit", "aegi", ENUM),
            F("currentType", "aegi", ENUM),
            F("usageType", "aegi", ENUM, many=True),
            F("numberOfConnectors", "aegi", INT),
            F("availableVoltage", "aegi", NUM, many=True),
            F("availableChargingPower", "aegi", NUM, many=True),
            F("chargingMode", "aegi", ENUM),
            F("connector", "aegi", OBJ, "Connector", many=True),
            F("electricEnergy", "aegi", OBJ, "ElectricEnergy", many=True),
        ),
        _ID,
    ),
    "Connector": Cls(
        (
            F("connectorType", "aegi", ENUM),
            F("otherConnector", "aegi", TEXT),
            F("connectorFormat", "aegi", ENUM),
            F("maxPowerAtSocket", "aegi", NUM),
            F("voltage", "aegi", NUM),
            F("maximumCurrent", "aegi", NUM),
        )
    ),
    "ElectricEnergy": Cls(
        (
            F("energyProductName", "aegi", MLS),
            F("isGreenEnergy", "aegi", BOOL),
            F("carbonDioxideImpact", "aegi", NUM),
            F("nuclearWasteImpact", "aegi", NUM),
            F("energyRateByReference", "aegi", REF, many=True),
            F("energyRate", "aegi", OBJ, "EnergyRate", many=True),
        )
    ),
    "EnergyRate": Cls(
        (
            F("ratePolicy", "aegi", ENUM),
            F("lastUpdated", "aegi", TEXT),
            F("applicableCurrency", "aegi", TEXT, many=True),
            F("rateName", "aegi", MLS),
            F("combinationWithParkingFee", "aegi", BOOL),
            F("maximumDeliveryFee", "aegi", NUM),
            F("minimumDeliveryFee", "aegi", NUM),
            F("additionalInformation", "aegi", MLS),
            F("energyPrice", "aegi", OBJ, "EnergyPrice", many=True),
            F("overallPeriod", "aegi", OBJ, "OverallPeriod"),
        ),
        (("idG", "id", TEXT),),
    ),
    "EnergyPrice": Cls(
        (
            F("priceType", "aegi", ENUM),
            F("value", "aegi", NUM),
            F("taxIncluded", "aegi", BOOL),
            F("taxRate", "aegi", NUM),
            F("additionalInformation", "aegi", MLS),
            F("overallPeriod", "aegi", OBJ, "OverallPeriod"),
            F("timeBasedApplicability", "aegi", OBJ, "TimeBasedApplicability"),
            F("energyBasedApplicability", "aegi", OBJ, "EnergyBasedApplicability"),
        )
    ),
    "TimeBasedApplicability": Cls((F("fromMinute", "aegi", INT), F("toMinute", "aegi", INT))),
    "EnergyBasedApplicability": Cls((F("fromKWh", "aegi", INT), F("toKWh", "aegi", INT))),
    # --- energy infrastructure: status ---
    "EnergyInfrastructureStatusPublication": Cls(
        (
            F("publicationTime", "com", TEXT),
            F("publicationCreator", "com", OBJ, "InternationalIdentifier"),
            F("tableReference", "aegi", REF, many=True),
            F("headerInformation", "aegi", OBJ, "HeaderInformation"),
            F("energyInfrastructureSiteStatus", "aegi", OBJ, "EnergyInfrastructureSiteStatus", many=True),
        ),
        (("lang", "lang", TEXT),),
    ),
    "EnergyInfrastructureSiteStatus": Cls(
        (
            *_FACILITY_OBJECT_STATUS,
            F(
                "energyInfrastructureStationStatus",
                "aegi",
                OBJ,
                "EnergyInfrastructureStationStatus",
                many=True,
            ),
        )
    ),
    "EnergyInfrastructureStationStatus": Cls(
        (
            *_FACILITY_OBJECT_STATUS,
            F("isAvailable", "aegi", BOOL),
            F("refillPointStatus", "aegi", CHOICE, many=True),
        )
    ),
    "ElectricChargingPointStatus": Cls(
        (
            *_FACILITY_OBJECT_STATUS,
            F("status", "aegi", ENUM),
            F("energyRateUpdate", "aegi", OBJ, "EnergyRateUpdate", many=True),
        )
    ),
    "EnergyRateUpdate": Cls(
        (
            F("lastUpdated", "aegi", TEXT),
            F("energyRateReference", "aegi", REF),
            F("additionalInformation", "aegi", MLS),
            F("energyPrice", "aegi", OBJ, "EnergyPrice", many=True),
        )
    ),
    # --- exchange information (message container) ---
    "ExchangeInformation": Cls(
        (
            F("exchangeContext", "ex", OBJ, "ExchangeContext"),
            F("dynamicInformation", "ex", OBJ, "DynamicInformation"),
        )
    ),
    "ExchangeContext": Cls(
        (
            F("codedExchangeProtocol", "ex", ENUM),
            F("exchangeSpecificationVersion", "ex", TEXT),
            F("supplierOrCisRequester", "ex", OBJ, "Agent"),
        )
    ),
    "Agent": Cls((F("internationalIdentifier", "ex", OBJ, "InternationalIdentifier"),)),
    "DynamicInformation": Cls((F("exchangeStatus", "ex", ENUM), F("messageGenerationTimestamp", "ex", TEXT))),
}
_SITE = F("energyInfrastructureSite", "aegi", OBJ, "EnergyInfrastructureSite")
_SITE_STATUS = F("energyInfrastructureSiteStatus", "aegi", OBJ, "EnergyInfrastructureSiteStatus")


# --- writing --------------------------------------------------------------------------------

_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;", "\t": "&#9;"}
)
#: Stands for the sites in a publication written around cached fragments; NUL never occurs in
#: XML (nor in our texts), so splitting there is safe.
_MARK = object()
_MARK_TEXT = "\x00sites\x00"


def _plain(value: Any) -> str:
    """A number or boolean as XML Schema writes it (never an exponent: xs:decimal has none)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return format(Decimal(text), "f") if "e" in text or "E" in text else text
    if isinstance(value, Decimal):
        return format(value, "f")
    raise ValueError(f"a number or boolean expected, not {value!r}")


def _scalar(value: Any, kind: str) -> str:
    """A scalar's element text or attribute value, unescaped."""
    return str(value) if kind == TEXT else _plain(value)


def _split_class(key: str) -> tuple[str, str]:
    """A class-named member ("aegiElectricChargingPoint") → ("aegi", "ElectricChargingPoint")."""
    for prefix in _CLASS_PREFIXES:
        if key.startswith(prefix) and key[len(prefix) : len(prefix) + 1].isupper():
            return prefix, key[len(prefix) :]
    raise ValueError(f"not a DATEX class member: {key!r}")


def _attributes(cls: Cls, obj: Mapping[str, Any]) -> tuple[str, int]:
    parts = []
    for key, name, kind in cls.attrs:
        if key in obj:
            parts.append(f' {name}="{_scalar(obj[key], kind).translate(_ATTR_ESCAPES)}"')
    return "".join(parts), len(parts)


def _body(out: list[str], cls_name: str, obj: Mapping[str, Any], used: int) -> None:
    cls = CLASSES[cls_name]
    for f in cls.fields:
        if f.key not in obj:
            continue
        used += 1
        value = obj[f.key]
        if f.many:
            for item in value:
                if item is _MARK:
                    out.append(_MARK_TEXT)
                else:
                    _element(out, f, item)
        else:
            _element(out, f, value)
    if used != len(obj):
        known = {f.key for f in cls.fields} | {a[0] for a in cls.attrs}
        raise ValueError(f"{cls_name}: no XML mapping for {sorted(set(obj) - known)}")


def _open(
    out: list[str], tag: str, attributes: str, cls_name: str, obj: Mapping[str, Any], used: int
) -> None:
    out.append(f"<{tag}{attributes}>")
    mark = len(out)
    _body(out, cls_name, obj, used)
    if len(out) == mark:
        out[-1] = f"<{tag}{attributes}/>"
    else:
        out.append(f"</{tag}>")


def _element(out: list[str], f: Field, value: Any) -> None:
    kind = f.kind
    if kind == TEXT:
        out.append(f"<{f.tag}>{str(value).translate(_TEXT_ESCAPES)}</{f.tag}>")
    elif kind == NUM or kind == INT or kind == BOOL:
        out.append(f"<{f.tag}>{_plain(value)}</{f.tag}>")
    elif kind == ENUM:
        extended = value.get("extendedValueG")
        attribute = "" if extended is None else f' _extendedValue="{str(extended).translate(_ATTR_ESCAPES)}"'
        if len(value) != 1 + (extended is not None):
            raise ValueError(f"{f.key}: an enumeration has a value and maybe an extendedValueG: {value!r}")
        text = _EXTENDED if value["value"] == "extendedG" else str(value["value"]).translate(_TEXT_ESCAPES)
        out.append(f"<{f.tag}{attribute}>{text}</{f.tag}>")
    elif kind == MLS:
        values = "".join(
            f'<com:value lang="{str(v["lang"]).translate(_ATTR_ESCAPES)}">'
            f"{str(v['value']).translate(_TEXT_ESCAPES)}</com:value>"
            for v in value["values"]
        )
        out.append(f"<{f.tag}><com:values>{values}</com:values></{f.tag}>")
    elif kind == OBJ:
        cls = CLASSES[f.cls]
        attributes, used = _attributes(cls, value)
        _open(out, f.tag, attributes, f.cls, value, used)
    elif kind == CHOICE:
        if len(value) != 1:
            raise ValueError(f"{f.key}: one class member expected, got {sorted(value)}")
        ((member, content),) = value.items()
        prefix, cls_name = _split_class(member)
        attributes, used = _attributes(CLASSES[cls_name], content)
        _open(out, f.tag, f' xsi:type="{prefix}:{cls_name}"{attributes}', cls_name, content, used)
    elif kind == REF:
        version = value.get("versionG")
        attributes = (
            f' targetClass="{TARGET_CLASS[value["targetClass"]]}"'
            f' id="{str(value["idG"]).translate(_ATTR_ESCAPES)}"'
            + ("" if version is None else f' version="{str(version).translate(_ATTR_ESCAPES)}"')
        )
        out.append(f"<{f.tag}{attributes}/>")
    elif kind == EXT:
        out.append(f"<{f.tag}>")
        for cls_name, content in value.items():
            inner = Field(cls_name, f.ns, OBJ, cls_name, name=cls_name[0].lower() + cls_name[1:])
            _element(out, inner, content)
        out.append(f"</{f.tag}>")
    else:  # pragma: no cover - the table above only uses the kinds handled here
        raise ValueError(f"unknown kind {kind!r}")


def _declarations() -> str:
    return "".join(f' xmlns:{prefix}="{uri}"' for prefix, uri in NAMESPACES.items())


def _payload(out: list[str], tag: str, payload: Mapping[str, Any], xmlns: str) -> None:
    """A PayloadPublication: its class is the payload's one class-named member."""
    members = [k for k in payload if not k.endswith("G")]
    if len(members) != 1:
        raise ValueError(f"a payload holds one publication, not {members}")
    prefix, cls_name = _split_class(members[0])
    body = payload[members[0]]
    attributes = f' xsi:type="{prefix}:{cls_name}" lang="{body["lang"]}"'
    for key in (
        "modelBaseVersionG",
        "extensionNameG",
        "extensionVersionG",
        "profileNameG",
        "profileVersionG",
    ):
        if key in payload:
            attributes += f' {key[:-1]}="{str(payload[key]).translate(_ATTR_ESCAPES)}"'
    _open(out, tag, xmlns + attributes, cls_name, body, 1)


def table_xml(document: Mapping[str, Any]) -> bytes:
    """The table publication (`datex2.table_publication`) as a DATEX II XML document."""
    out = [_DECLARATION]
    _payload(out, "d2:payload", document["payload"], _declarations())
    return "".join(out).encode()


def status_xml(document: Mapping[str, Any]) -> bytes:
    """The status publication (`datex2.status_publication`, a message container) as XML."""
    container = document["messageContainer"]
    out = [_DECLARATION, f"<con:messageContainer{_declarations()}>"]
    for payload in container.get("payload") or ():
        _payload(out, "con:payload", payload, "")
    exchange = container["exchangeInformation"]
    _open(out, "con:exchangeInformation", ' modelBaseVersion="3"', "ExchangeInformation", exchange, 0)
    out.append("</con:messageContainer>")
    return "".join(out).encode()


def _fragment(f: Field, record: Mapping[str, Any]) -> bytes:
    out: list[str] = []
    _element(out, f, record)
    return "".join(out).encode()


def site_table_xml(record: Mapping[str, Any]) -> bytes:
    """A site record (`datex2.site_table_record`) as an XML fragment (`aegi:` and friends as
    prefixes, declared by the document it is joined into with `table_publication_xml`)."""
    return _fragment(_SITE, record)


def site_status_xml(record: Mapping[str, Any]) -> bytes:
    """A site status record (`datex2.site_status_record`) as an XML fragment."""
    return _fragment(_SITE_STATUS, record)


def _around(document: bytes, fragments: Sequence[bytes]) -> bytes:
    head, tail = document.split(_MARK_TEXT.encode(), 1)
    return b"".join((head, *fragments, tail))


def table_publication_xml(
    fragments: Sequence[bytes],
    publisher: Publisher,
    published_at: datetime,
    table_version: str | int,
    *,
    lang: str = datex2.DEFAULT_LANG,
    information_status: str = "real",
) -> bytes:
    """The table publication as XML from cached site fragments (`site_table_xml`): the same
    bytes as `table_xml` of the whole publication."""
    document = datex2.table_publication(
        [_MARK], publisher, published_at, table_version, lang=lang, information_status=information_status
    )
    return _around(table_xml(document), fragments)


def status_publication_xml(
    fragments: Sequence[bytes],
    publisher: Publisher,
    published_at: datetime,
    table_version: str | int,
    *,
    lang: str = datex2.DEFAULT_LANG,
    information_status: str = "real",
    exchange_protocol: str = "snapshotPull",
) -> bytes:
    """The status publication as XML from cached site status fragments (`site_status_xml`)."""
    document = datex2.status_publication(
        [_MARK],
        publisher,
        published_at,
        table_version,
        lang=lang,
        information_status=information_status,
        exchange_protocol=exchange_protocol,
    )
    return _around(status_xml(document), fragments)


# --- reading back ---------------------------------------------------------------------------


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _read_scalar(kind: str, text: str) -> Any:
    if kind == INT:
        return int(text)
    if kind == NUM:
        return _number(text)
    if kind == BOOL:
        return text in ("true", "1")
    return text


def _read_body(element: ET.Element, cls_name: str, prefixes: Mapping[str, str]) -> dict[str, Any]:
    cls = CLASSES[cls_name]
    result: dict[str, Any] = {}
    for key, name, kind in cls.attrs:
        if name in element.attrib:
            result[key] = _read_scalar(kind, element.attrib[name])
    for child in element:
        f = cls.by_clark.get(child.tag)
        if f is None:
            raise ValueError(f"{cls_name}: unexpected element {child.tag}")
        value = _read(child, f, prefixes)
        if f.many:
            result.setdefault(f.key, []).append(value)
        else:
            result[f.key] = value
    return result


def _member(qualified: str, prefixes: Mapping[str, str]) -> tuple[str, str]:
    """An xsi:type ("p:Class", p as the document declares it) → (our prefix, class name)."""
    prefix, _, cls_name = qualified.rpartition(":")
    return _PREFIX_OF[prefixes[prefix]], cls_name


def _read(element: ET.Element, f: Field, prefixes: Mapping[str, str]) -> Any:
    kind = f.kind
    if kind in (TEXT, INT, NUM, BOOL):
        return _read_scalar(kind, element.text or "")
    if kind == ENUM:
        text = element.text or ""
        enum: dict[str, Any] = {"value": "extendedG" if text == _EXTENDED else text}
        if "_extendedValue" in element.attrib:
            enum["extendedValueG"] = element.attrib["_extendedValue"]
        return enum
    if kind == MLS:
        return {
            "values": [
                {"lang": v.attrib.get("lang", ""), "value": v.text or ""}
                for values in element
                for v in values
            ]
        }
    if kind == OBJ:
        return _read_body(element, f.cls, prefixes)
    if kind == CHOICE:
        prefix, cls_name = _member(element.attrib[_XSI_TYPE], prefixes)
        return {prefix + cls_name: _read_body(element, cls_name, prefixes)}
    if kind == REF:
        target = element.attrib["targetClass"].rpartition(":")[2]
        ref = {"targetClass": target, "idG": element.attrib["id"]}
        if "version" in element.attrib:
            ref["versionG"] = element.attrib["version"]
        return ref
    if kind == EXT:
        result = {}
        for child in element:
            local = child.tag.rpartition("}")[2]
            cls_name = local[0].upper() + local[1:]
            result[cls_name] = _read_body(child, cls_name, prefixes)
        return result
    raise ValueError(f"unknown kind {kind!r}")  # pragma: no cover


def _read_payload(element: ET.Element, prefixes: Mapping[str, str]) -> dict[str, Any]:
    prefix, cls_name = _member(element.attrib[_XSI_TYPE], prefixes)
    payload: dict[str, Any] = {}
    for name in ("modelBaseVersion", "extensionName", "extensionVersion", "profileName", "profileVersion"):
        if name in element.attrib:
            payload[name + "G"] = element.attrib[name]
    payload[prefix + cls_name] = _read_body(element, cls_name, prefixes)
    return payload


def xml_to_json(document: bytes) -> dict[str, Any]:
    """Our XML publication back in the JSON form (for tests and tools: it reads what this
    module writes, and says which element it does not know rather than dropping it)."""
    prefixes: dict[str, str] = {}
    root: ET.Element | None = None
    for event, item in ET.iterparse(io.BytesIO(document), events=("start-ns", "start")):
        if event == "start-ns":
            prefix, uri = item
            prefixes.setdefault(prefix, uri)
        elif root is None:
            root = item
    if root is None:  # pragma: no cover - iterparse raises on an empty document
        raise ValueError("empty document")
    if root.tag == f"{{{NAMESPACES['d2']}}}payload":
        return {"payload": _read_payload(root, prefixes)}
    if root.tag == f"{{{NAMESPACES['con']}}}messageContainer":
        container: dict[str, Any] = {}
        for child in root:
            if child.tag == f"{{{NAMESPACES['con']}}}payload":
                container.setdefault("payload", []).append(_read_payload(child, prefixes))
            elif child.tag == f"{{{NAMESPACES['con']}}}exchangeInformation":
                container["exchangeInformation"] = _read_body(child, "ExchangeInformation", prefixes)
            else:
                raise ValueError(f"messageContainer: unexpected element {child.tag}")
        return {"messageContainer": container}
    raise ValueError(f"not a DATEX II payload or message container: {root.tag}")
