"""What the OpenAPI document (`/openapi.json`, `/docs`) says before the operations: the
description an integrator starts from, and the tags in the order they read them.

Every operation's tag must be one of `TAGS` (a test walks the document), and the order here is
the order of `/docs`: start, the daily work, then administration and the other interfaces.
"""

from __future__ import annotations

from typing import Any

TITLE = "Stekker API"

DESCRIPTION = """
The backoffice of a Charge Point Operator: the stations that connect over OCPP 1.6J, 2.0.1 and
2.1, their sessions, the tokens that may charge, remote functions, tariffs and CDRs. This
document covers the **operator API** under `/api/` (JSON), the stations' diagnostics uploads
(`/upload/`), the public **open data** (`/opendata/`) and the roaming partners' **OCPI 2.2.1**
interface (`/ocpi/`, with OCPI's own envelope and token authentication).

## Getting started

```sh
make demo                                        # a server on http://127.0.0.1:8191 with 3 simulated stations
.venv/bin/stekker user add alice --role admin    # prints alice's API token (stk_...)
export TOKEN=stk_...
curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8191/api/stations
curl -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:8191/api/sessions?status=active"
curl -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\
     -d '{"token_uid": "DEMO-0002", "evse_number": 1}' http://127.0.0.1:8191/api/stations/SIM002/remote-start
```

A remote start answers the station's `status` and, when the station begins the session within
`STEKKER_REMOTE_START_SESSION_WAIT` seconds, its `session_id`; otherwise `follow_url` (also in
`Location`) is the remote start to poll until its `session_id` is set.

Lists page by key: `limit`, and `after` = the `id` of the last row you have; while more rows
follow, the answer carries `Link: <...>; rel="next"` (relative, with every filter): follow it
until it is gone. Times are ISO 8601 (UTC in answers; give an offset in queries), energy in Wh,
amounts as decimal strings in the CDR's currency.

## Authentication

Send `Authorization: Bearer <token>` with every `/api/` request:

- a **user's API token** (`stk_...`): `POST /api/auth/token` with `{"username", "password"}`
  (valid 12 hours, `STEKKER_LOGIN_TOKEN_HOURS`), or a long-lived one from
  `POST /api/users/{username}/tokens` or `stekker user token NAME` (shown once; revoke it with
  `POST /api/auth/tokens/{id}/revoke`). It acts with its user's role.
- `STEKKER_API_TOKEN`, when the server has one: the bootstrap admin.

A fresh install with no users and no `STEKKER_API_TOKEN` is open (every caller an admin) until
the first user, an admin, exists. The console at `/console/` logs in with the same users and
keeps an HttpOnly session cookie; that cookie opens the console's pages only, never `/api/`.
Wrong passwords slow down the address they come from (429 with `Retry-After`).

**Roles** (each operation lists its own as "Roles: ..." and in `x-roles`):
`admin` (everything, and users), `operator` (runs the network: configuration, inventory,
firmware, bulk jobs, tariffs), `helpdesk` (finds sessions; stop, unlock, reset and availability
of one station at a time), `municipality` (reads everything, approves tariffs and sets the
maximum price, requests diagnostics) and `read-only`. The municipality and read-only see card
numbers as pseudonyms (`p:` + hex), and search with them.

## Errors

Every error of the operator API has one body, `ApiError`:
`{"error": "not_found", "detail": "no station 'CP9'", "errors": null}`. `error` is a stable kind,
`detail` says what is wrong, `errors` lists the fields at fault (422 only, without the values
sent). Each operation lists the statuses it can answer: 401 (no or a revoked token), 403 (the
role may not), 404 (no such object), 409 (conflicts with the state: exists, offline, refused),
413 (body over its limit, refused before it is read), 422 (invalid input), 429, 502 (the
station answered with an error), 503 (the database could not answer), 504 (the station did not
answer in time); 202 `outcome_unknown` when a station's connection closed after it received the
call.
""".strip()

_TAG_DESCRIPTIONS: list[tuple[str, str]] = [
    ("auth", "Log in for an API token, who you are, your password, revoking tokens."),
    ("stations", "Register stations; their connection, status, EVSEs and timeline; remote start."),
    ("sessions", "Sessions with their energy and meter values; remote stop; following a remote start."),
    ("tokens", "The cards and app ids that may charge; every change reaches the stations' local lists."),
    ("functions", "Every remote function (reset, unlock, firmware...), one API for 1.6 and 2.0.1."),
    ("configuration", "A station's configuration: as reported, asked now, changed; full reports."),
    ("jobs", "Bulk jobs: one function on a selection of stations, with the state per station."),
    ("templates", "The desired configuration of a group, and how its stations drift from it."),
    ("inventory", "Locations, EVSEs, connectors, groups, and imports of stations and tokens."),
    ("helpdesk", "Finding a driver's session, a station's recent history, stop and release."),
    ("problem reports", "Problems drivers reported from a public EVSE page, for the helpdesk to handle."),
    ("diagnostics", "Diagnostics and log files requested from stations, and their uploads."),
    ("health", "Connection health of the fleet, offline stations and the OCPP message log."),
    ("tariffs", "Tariffs, their approval by the municipality, and the maximum price."),
    ("cdrs", "Charge detail records: the priced bills of finished sessions, and corrections."),
    ("reports", "Reports, such as the energy per energy supplier per quarter hour."),
    ("exports", "Every historical record, streamed as CSV, JSON lines or Parquet."),
    ("users", "Users, their roles and API tokens (admin)."),
    ("audit", "Who did what, when: the audit log."),
    ("ocpi partners", "Roaming partners: invitation, registration, their parties, the push outbox."),
    ("open data", "Public, no login: locations, status, prices (OCPI form, DATEX II, GeoJSON, live)."),
    ("ocpi", "The OCPI 2.2.1 interface for eMSPs and hubs (OCPI envelopes, `Authorization: Token ...`)."),
    ("meta", "What this server offers, and whether it runs."),
]  # fmt: skip

#: the tags in the order `/docs` shows them, each with what it holds
TAGS: list[dict[str, Any]] = [{"name": name, "description": text} for name, text in _TAG_DESCRIPTIONS]
TAG_ORDER: list[str] = [name for name, _ in _TAG_DESCRIPTIONS]
