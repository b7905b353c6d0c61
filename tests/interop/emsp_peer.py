"""An independent eMSP for interoperability tests: the OCPI 2.2.1 eMSP server of the
`extrawest-ocpi` library (PyPI; import name `py_ocpi`, pydantic 1), receiving our pushes.

Run it with the peer virtualenv's python (tests/interop/peer_env.py), never ours:

    python emsp_peer.py --port 8123 --log received.jsonl --token-a REGISTRATION-TOKEN

It serves the library's versions, version details, credentials and the RECEIVER interfaces of
locations, sessions, cdrs and tariffs on 127.0.0.1:PORT (versions at /ocpi/versions). Every
body is parsed by the library's own routes and pydantic models; this file only supplies what
the library leaves to its user (storage, which tokens are valid) and records, for every
request, one JSON line: module, method, path, the HTTP and OCPI status it answered, whether
the library's validation accepted the body ("parsed") and what it stored, or the validation
errors. The library acts as the *server* of the credentials handshake (a CPO registers with
it using token A); it has no client side to register with a CPO itself.
"""

from __future__ import annotations

import argparse
import contextvars
import json
import os
import secrets
import sys
from typing import Any


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="loopback port to serve on")
    parser.add_argument("--log", required=True, help="JSON lines file: one line per request")
    parser.add_argument("--token-a", required=True, help="the registration token a CPO registers with")
    parser.add_argument("--country", default="NL", help="our eMSP country code")
    parser.add_argument("--party", default="EXT", help="our eMSP party id")
    return parser.parse_args()


ARGS = _arguments()
# the library reads its settings from the environment when imported (pydantic 1 BaseSettings)
os.environ.update(
    OCPI_HOST=f"127.0.0.1:{ARGS.port}",
    PROTOCOL="http",
    COUNTRY_CODE=ARGS.country,
    PARTY_ID=ARGS.party,
    ENVIRONMENT="production",
)

import uvicorn  # noqa: E402
from fastapi.exception_handlers import request_validation_exception_handler  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from py_ocpi import get_application  # noqa: E402
from py_ocpi.core.authentication.authenticator import Authenticator  # noqa: E402
from py_ocpi.core.crud import Crud  # noqa: E402
from py_ocpi.core.enums import ModuleID, RoleEnum  # noqa: E402
from py_ocpi.modules.locations.schemas import EnergyMix  # noqa: E402
from py_ocpi.modules.versions.enums import VersionNumber  # noqa: E402

#: What the request being handled has done so far (set per request by `Recorder`).
CURRENT: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("current")
#: Tokens C we issued to CPOs that registered with us (what they call us with).
ISSUED: list[str] = []
#: Everything the library asked us to store, by (module, id).
STORE: dict[tuple[str, str], Any] = {}


def _note(**values: Any) -> None:
    record = CURRENT.get(None)
    if record is not None:
        record.update(values)


class PeerAuthenticator(Authenticator):
    """Token A registers; only tokens C we issued open the modules."""

    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        return list(ISSUED)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        return [ARGS.token_a]


class MemoryCrud(Crud):
    """Storage in memory; what the library hands us has passed its validation."""

    @classmethod
    async def get(cls, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kwargs: Any) -> Any:
        return STORE.get((module.value, str(id)))

    @classmethod
    async def list(cls, module: ModuleID, role: RoleEnum, filters: dict, *args: Any, **kwargs: Any) -> Any:
        found = [v for (m, _), v in STORE.items() if m == module.value]
        return found, len(found), True

    @classmethod
    async def create(cls, module: ModuleID, role: RoleEnum, data: dict, *args: Any, **kwargs: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            return cls._register(data)
        key = str(data.get("id") or "")
        STORE[(module.value, key)] = data
        _note(parsed=True, stored=data)
        return data

    @classmethod
    async def update(
        cls, module: ModuleID, role: RoleEnum, data: dict, id: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            return cls._register(data)
        STORE[(module.value, str(id))] = data
        _note(parsed=True, stored=data)
        return data

    @classmethod
    async def delete(cls, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kwargs: Any) -> None:
        STORE.pop((module.value, str(id)), None)
        _note(parsed=True, stored=None)

    @classmethod
    async def do(cls, module: ModuleID, role: RoleEnum | None, action: Any, *args: Any, **kwargs: Any) -> Any:
        return None

    @staticmethod
    def _register(data: dict) -> dict:
        """A CPO's credentials (with its endpoints, which the library read): answer with ours."""
        token_c = secrets.token_urlsafe(24)
        ISSUED.append(token_c)
        _note(
            parsed=True,
            stored={"their_credentials": data["credentials"], "their_endpoints": data["endpoints"]},
        )
        return {
            "token": token_c,
            "url": f"http://127.0.0.1:{ARGS.port}/ocpi/versions",
            "roles": [
                {
                    "role": "EMSP",
                    "business_details": {"name": "extrawest-ocpi interop peer"},
                    "party_id": ARGS.party,
                    "country_code": ARGS.country,
                }
            ],
        }


def _follow_the_spec_on_energy_mix() -> list[str]:
    """The one place the library contradicts OCPI 2.2.1 in what we send: its EnergyMix makes
    `energy_sources` (cardinality *), `supplier_name` and `energy_product_name` (both ?)
    required, so it refuses the spec's own example `{"is_green_energy": true}`
    (location_energymix_example_simple.json) and every Location carrying it. Those three
    become optional here, as the spec has them; every other rule stays the library's."""
    mended = []
    for name, default in (("energy_sources", []), ("supplier_name", None), ("energy_product_name", None)):
        field = EnergyMix.__fields__[name]
        if field.required:
            field.required, field.default, field.allow_none = False, default, default is None
            mended.append(f"EnergyMix.{name}")
    return mended


def _module(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    if parts[-1:] == ["versions"]:
        return "versions"
    if parts[-1:] == ["details"]:
        return "details"
    return parts[3] if len(parts) > 3 else "?"


class Recorder:
    """ASGI wrapper: one JSON line per request with what the library made of it."""

    def __init__(self, app: Any, log_path: str) -> None:
        self.app = app
        self.log_path = log_path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        answer = bytearray()
        record: dict[str, Any] = {"parsed": False, "errors": None, "stored": None}

        async def receiving() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                body.extend(message.get("body", b""))
            return message

        held: list[dict] = []

        async def sending(message: dict) -> None:
            # the answer is held until its last part, the line written, then sent: a client
            # that has its answer (it may stop reading at Content-Length, before the final
            # empty part) finds the line already in the file
            if message["type"] == "http.response.start":
                record["http_status"] = message["status"]
                held.append(message)
                return
            if message["type"] == "http.response.body":
                answer.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                record["written"] = True
                self._write(scope, record, bytes(body), bytes(answer))
                for start in held:
                    await send(start)
                held.clear()
                await send({"type": "http.response.body", "body": bytes(answer), "more_body": False})
                return
            await send(message)

        token = CURRENT.set(record)
        try:
            await self.app(scope, receiving, sending)
        finally:
            CURRENT.reset(token)
            if not record.get("written"):
                self._write(scope, record, bytes(body), bytes(answer))

    def _write(self, scope: dict, record: dict[str, Any], body: bytes, answer: bytes) -> None:
        try:
            sent: Any = json.loads(body) if body else None
        except ValueError:
            sent = body.decode("utf-8", "replace")
        try:
            answered = json.loads(answer) if answer else None
        except ValueError:
            answered = None
        line = {
            "module": _module(scope["path"]),
            "method": scope["method"],
            "path": scope["path"],
            "http_status": record.get("http_status"),
            "ocpi_status": answered.get("status_code") if isinstance(answered, dict) else None,
            "parsed": record["parsed"],
            "errors": record["errors"],
            "body": sent,
            "stored": record["stored"],
        }
        with open(self.log_path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line, default=str) + "\n")


async def _invalid(request: Any, exc: RequestValidationError) -> Any:
    """The library's answer to a body its models refuse (HTTP 422), with the errors recorded."""
    _note(parsed=False, errors=json.loads(json.dumps(exc.errors(), default=str)))
    return await request_validation_exception_handler(request, exc)


def main() -> None:
    app = get_application(
        version_numbers=[VersionNumber.v_2_2_1],
        roles=[RoleEnum.emsp],
        modules=[
            ModuleID.credentials_and_registration,
            ModuleID.locations,
            ModuleID.sessions,
            ModuleID.cdrs,
            ModuleID.tariffs,
        ],
        crud=MemoryCrud,
        authenticator=PeerAuthenticator,
    )
    app.add_exception_handler(RequestValidationError, _invalid)
    mended = _follow_the_spec_on_energy_mix()
    print(f"eMSP peer on http://127.0.0.1:{ARGS.port}/ocpi/versions", file=sys.stderr, flush=True)
    print(
        f"made optional as OCPI 2.2.1 has them: {', '.join(mended) or 'nothing'}", file=sys.stderr, flush=True
    )
    uvicorn.run(Recorder(app, ARGS.log), host="127.0.0.1", port=ARGS.port, log_level="warning")


if __name__ == "__main__":
    main()
