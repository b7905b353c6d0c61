"""Pseudonyms for token uids and contract ids: a keyed hash, the same for the same uid.

A researcher who gets an export must not learn which card charged, but must still be able to
say "these 40 sessions were one driver". A keyed hash (HMAC-SHA256) gives both: the same uid
always gives the same pseudonym, and without the key nobody can go back from a pseudonym to a
uid, not even by hashing every possible card number (which a plain hash would allow: RFID uids
are short). The key is `Settings.pseudonym_key`, else a random key the installation made once
and keeps in the database (`InstallationSecret`), so pseudonyms stay the same across exports,
processes and restarts.

Identifiers hide in three places, each handled here:
- a column that *is* one (a session's `token_uid`): replaced by its pseudonym;
- JSON (an audit entry's detail, the OCPI CDR's `cdr_token`): values under a key that names an
  identifier (`uid`, `token_uid`, `id_tag`, `idToken`, `contract_id`, `emaid`...) are replaced,
  at any depth;
- free text (a refusal reason "token 04A2... is blocked"): every identifier found in the same
  record is replaced wherever it occurs in its text (uids shorter than 4 characters are not
  searched for in text: they would match everywhere).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from stekker.db.models_secrets import InstallationSecret
from stekker.export.records import Column, ColumnType, Personal
from stekker.services.context import ServiceContext

PREFIX = "p:"
HEX_DIGITS = 24  # 96 bits: no two of even billions of uids share a pseudonym
KEY_NAME = "export.pseudonym_key"
MIN_TEXT_MATCH = 4
_CACHE_MAX = 100_000
SIGNED_DATA = "SignedData"  # the OCPP format of a signed meter value

#: JSON keys whose value is a token uid, contract id or the like, compared in lower case with
#: `_` and `-` removed (so `id_tag`, `idTag` and `IdTag` are one): OCPP 1.6 idTag and
#: parentIdTag, 2.0.1 idToken (also inside groupIdToken), additionalIdToken, OCPI Token uid,
#: contract_id and visual_number, eMAID, our own token_uid names and the supplier contract.
#: Only text values are identifiers (a number under such a key is left alone).
IDENTIFIER_KEYS = frozenset(
    {
        "uid",
        "tokenuid",
        "stoptokenuid",
        "idtag",
        "parentidtag",
        "idtoken",
        "additionalidtoken",
        "contractid",
        "emaid",
        "emaidid",
        "visualnumber",
        "energycontractid",
    }
)


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


class Pseudonymiser:
    """Replaces identifiers by `p:` + the first 24 hex digits of HMAC-SHA256(key, identifier).

    Uids repeat (a driver charges often, a session has hundreds of meter values), so recent
    answers are remembered, up to a bounded number.
    """

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("a pseudonym key cannot be empty")
        self._key = key
        self._cache: dict[str, str] = {}
        self._patterns: dict[tuple[str, ...], re.Pattern[str]] = {}

    def __call__(self, identifier: str) -> str:
        known = self._cache.get(identifier)
        if known is not None:
            return known
        digest = hmac.new(self._key, identifier.encode("utf-8", "surrogatepass"), hashlib.sha256)
        pseudonym = PREFIX + digest.hexdigest()[:HEX_DIGITS]
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[identifier] = pseudonym
        return pseudonym

    def collect(self, value: Any, found: dict[str, str]) -> None:
        """Add to `found` (identifier → pseudonym) every identifier in JSON `value`."""
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and _normal(key) in IDENTIFIER_KEYS:
                    if isinstance(item, str) and item:
                        found[item] = self(item)
                    else:
                        self.collect(item, found)
                else:
                    self.collect(item, found)
        elif isinstance(value, list):
            for item in value:
                self.collect(item, found)

    def scrub(self, value: Any, found: Mapping[str, str]) -> Any:
        """JSON `value` with identifiers under identifier keys replaced, and every identifier of
        `found` replaced in text (run `collect` over the whole record first)."""
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for key, item in value.items():
                if isinstance(key, str) and _normal(key) in IDENTIFIER_KEYS:
                    if isinstance(item, str) and item:
                        out[key] = self(item)
                        continue
                out[key] = self.scrub(item, found)
            return out
        if isinstance(value, list):
            return [self.scrub(item, found) for item in value]
        if isinstance(value, str):
            return self.scrub_text(value, found)
        return value

    def scrub_text(self, text: str, found: Mapping[str, str]) -> str:
        """`text` with each identifier of `found` replaced by its pseudonym, in one pass (so a
        pseudonym already written is never matched again)."""
        searchable = tuple(sorted((k for k in found if len(k) >= MIN_TEXT_MATCH), key=len, reverse=True))
        if not searchable or not any(k in text for k in searchable):
            return text
        pattern = self._patterns.get(searchable)
        if pattern is None:
            if len(self._patterns) >= 1_000:
                self._patterns.clear()
            pattern = self._patterns[searchable] = re.compile("|".join(map(re.escape, searchable)))
        return pattern.sub(lambda match: found[match.group(0)], text)


async def installation_key(ctx: ServiceContext) -> bytes:
    """The pseudonym key: the configured one, else the installation's own (made on first use).

    Two processes that both find none insert at once; `ON CONFLICT DO NOTHING` lets the first
    one win and both read the winner, so every process uses the same key.
    """
    configured = ctx.settings.pseudonym_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode("utf-8")
    stored = await _stored_key(ctx)
    if stored is not None:
        return stored
    candidate = secrets.token_hex(32)
    at = ctx.now()

    async def job(db: AsyncSession) -> None:
        insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = insert(InstallationSecret).values(name=KEY_NAME, value=candidate, created_at=at)
        await db.execute(statement.on_conflict_do_nothing(index_elements=["name"]))

    await ctx.write(job)
    stored = await _stored_key(ctx)
    assert stored is not None, "the pseudonym key was just stored"
    return stored


async def _stored_key(ctx: ServiceContext) -> bytes | None:
    async with ctx.db() as db:
        value = await db.scalar(select(InstallationSecret.value).where(InstallationSecret.name == KEY_NAME))
    return None if value is None else bytes.fromhex(value)


class RecordScrubber:
    """Applies a kind's `Personal` markers to its rows: what a pseudonymised export sends.

    Per row: identifier columns become pseudonyms, link columns empty, signed meter data empty
    (when the row's `format` is SignedData), and text or JSON columns that may quote an
    identifier get every identifier of the row (from its identifier columns and from JSON keys
    that name one) replaced.
    """

    def __init__(self, columns: Sequence[Column], pseudonymiser: Pseudonymiser) -> None:
        self._pseudonym = pseudonymiser
        marked = {p: [i for i, c in enumerate(columns) if c.personal is p] for p in Personal}
        self._identifiers = marked[Personal.IDENTIFIER]
        self._links = marked[Personal.LINK]
        self._signed = marked[Personal.SIGNED]
        self._contains = [(i, columns[i].type is ColumnType.JSON) for i in marked[Personal.CONTAINS]]
        names = [c.name for c in columns]
        self._format = names.index("format") if self._signed and "format" in names else None

    def __call__(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        return [self.row(row) for row in rows]

    def row(self, row: Sequence[Any]) -> list[Any]:
        values = list(row)
        pseudonym = self._pseudonym
        found: dict[str, str] = {}
        for i in self._identifiers:
            value = values[i]
            if value:
                found[value] = values[i] = pseudonym(value)
        for i in self._links:
            values[i] = None
        if self._signed and (self._format is None or values[self._format] == SIGNED_DATA):
            for i in self._signed:
                values[i] = None
        if self._contains:
            for i, is_json in self._contains:
                if is_json:
                    pseudonym.collect(values[i], found)
            for i, is_json in self._contains:
                value = values[i]
                if value is None:
                    continue
                values[i] = pseudonym.scrub(value, found) if is_json else pseudonym.scrub_text(value, found)
        return values
