"""Which words on a console page are in the wrong language.

A page in Dutch may show no English word and a page in English no Dutch one. A word counts as
English when the catalogue uses it only in its English texts (or it is one of a few English
words no Dutch text has); Dutch likewise. Words both languages use (Status, Online, EVSE) and
words neither catalogue knows (station ids, card numbers, place names) pass: the lists are
the console's own vocabulary, so a raw enum value (`Charging`, `completed`), an English
sentence built in code or a missing translation shows up, while data does not.

Text marked as not to be translated (`translate="no"`: codes, names, a station's own words) and
text in the other language on purpose (`lang="en"` on the "English" link) is left out. Numbers
in Dutch pages use a decimal comma (`0,35 kWh`), never a point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stekker.web import i18n

#: a run of two or more letters (one is a unit or an initial: `A`, `u`); letters against digits
#: are part of a code (`CP042`, a pseudonym), not a word
WORD = re.compile(r"(?<!\d)[^\W\d_]{2,}(?!\d)")
PLACEHOLDER = re.compile(r"\{[^}]*\}")

#: English words that are never Dutch, flagged on Dutch pages whatever the catalogue says
ENGLISH_CORE = frozenset(
    """the and with without from to on by at then only up not has have were this that
    which when where there other none yes no started stopped session sessions card cards requested
    accepted rejected failed created updated deleted changed charging available preparing
    finishing faulted unavailable occupied reserved suspended completed active pending energy
    parking reason unknown given""".split()
)
#: Dutch words that are never English, flagged on English pages whatever the catalogue says
DUTCH_CORE = frozenset(
    """de het een en niet met voor naar bij uit geen wordt zijn laadpaal laadpalen
    laadsessie laadsessies laadpas laadpassen gestopt begonnen bezig afgerond beschikbaar
    ja nee gelukt mislukt aangevraagd geaccepteerd geweigerd aangemaakt gewijzigd verwijderd
    aansluiting energie parkeertijd onbekend""".split()
)
#: proper names that are also a word in one language: the product is called Stekker ("plug")
ALLOWED = frozenset({"stekker"})

#: a Dutch page writes `0,35 kWh` and `€ 0,35`; a decimal point there is an English number (a
#: point before three digits is Dutch for thousands: `8.486.000 Wh`)
POINT_NUMBER = re.compile(r"\d\.(?:\d{1,2}|\d{4,})\s?(?:kWh|kW|Wh)\b|€\s?-?\d+\.\d{1,2}(?!\d)")

#: the visible text of a page, without what is marked as not to be translated or as another
#: language; also what people read from attributes (placeholders, labels for screen readers)
VISIBLE_TEXT_JS = """(lang) => {
  const foreign = document.querySelectorAll('[translate="no"], body [lang]:not([lang="' + lang + '"])');
  for (const el of foreign) el.remove();  // read last: the page is not used after this
  const parts = [document.title, document.body.innerText];
  for (const el of document.querySelectorAll('[placeholder], [aria-label], [title], img[alt]')) {
    for (const name of ['placeholder', 'aria-label', 'title', 'alt']) {
      const value = el.getAttribute(name);
      if (value) parts.push(value);
    }
  }
  return parts.join('\\n');
}"""


def words_of(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(PLACEHOLDER.sub(" ", text))}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The words that give a page away as English, and as Dutch."""

    english: frozenset[str]
    dutch: frozenset[str]

    @classmethod
    def from_catalogue(cls) -> Vocabulary:
        dutch: set[str] = set()
        english: set[str] = set()
        for nl, en in i18n.CATALOGUE.values():
            dutch |= words_of(nl)
            english |= words_of(en)
        return cls(
            english=frozenset(((english - dutch) | ENGLISH_CORE) - ALLOWED),
            dutch=frozenset(((dutch - english) | DUTCH_CORE) - ALLOWED),
        )

    def foreign(self, lang: str, text: str) -> list[str]:
        """The words (and, in Dutch, the numbers) of `text` that belong to the other language,
        each once, in the order they appear."""
        wrong = self.english if lang == "nl" else self.dutch
        found: list[str] = []
        for word in WORD.findall(text):
            if word.lower() in wrong and word not in found:
                found.append(word)
        if lang == "nl":
            found += [m.group(0) for m in POINT_NUMBER.finditer(text) if m.group(0) not in found]
        return found


def context_of(text: str, word: str, width: int = 40) -> str:
    """A short piece of `text` around the first `word`, for the failure message."""
    at = re.search(rf"(?<![^\W\d_]){re.escape(word)}(?![^\W\d_])", text)
    if at is None:
        return word
    line = text[max(0, at.start() - width) : at.end() + width]
    return " ".join(line.split())


async def visible_text(page: Any, lang: str) -> str:
    text: str = await page.evaluate(VISIBLE_TEXT_JS, lang)
    return text
