"""Country names, ISO codes and adjectives: "Germany" = "DE" = "DEU" = "German".

Names and codes come from pycountry (ISO 3166); adjectives (demonyms) and common alternative
spellings from countryinfo. A data value that is a code or a name maps to one country;
anything else (the Globo log's numeric region codes) is left as it is.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import pycountry


@dataclass(frozen=True)
class Country:
    code: str  # ISO alpha-2
    name: str  # short English name
    names: Tuple[str, ...]  # names, official name, alternative spellings (not codes)
    codes: Tuple[str, ...]  # alpha-2 and alpha-3
    adjectives: Tuple[str, ...]  # "German"


def _demonyms() -> Dict[str, Tuple[str, Tuple[str, ...]]]:
    """alpha-2 -> (demonym, alternative spellings), from countryinfo's data files."""
    try:
        from countryinfo import CountryInfo
    except ImportError:  # optional: names and codes still work
        return {}
    found = {}
    for info in CountryInfo().all().values():
        code = (info.get("ISO") or {}).get("alpha2")
        if code:
            spellings = tuple(s for s in info.get("altSpellings", []) if len(s) > 3)
            found[code] = (info.get("demonym") or "", spellings)
    return found


@functools.lru_cache(maxsize=1)
def countries() -> Dict[str, Country]:
    """Every ISO country by alpha-2 code."""
    extra = _demonyms()
    result = {}
    for record in pycountry.countries:
        code = record.alpha_2
        demonym, spellings = extra.get(code, ("", ()))
        names = [record.name]
        for attribute in ("common_name", "official_name"):
            value = getattr(record, attribute, None)
            if value:
                names.append(value)
        names.extend(spellings)
        if "," in record.name:  # "Korea, Republic of" -> "Korea"
            names.append(record.name.split(",")[0])
        result[code] = Country(
            code,
            getattr(record, "common_name", None) or record.name,
            tuple(dict.fromkeys(names)),
            (code, record.alpha_3),
            (demonym,) if demonym else (),
        )
    if "GB" in result:  # "UK" is how people write it, though ISO says GB
        uk = result["GB"]
        result["GB"] = Country(uk.code, uk.name, uk.names, uk.codes + ("UK",), uk.adjectives)
    return result


def country_of(value: str) -> Optional[Country]:
    """The country a data value names (by code or name), if any."""
    text = value.strip()
    if not text:
        return None
    table = countries()
    upper = text.upper()
    for country in table.values():
        if upper in country.codes:
            return country
    lower = text.lower()
    for country in table.values():
        if lower in (n.lower() for n in country.names):
            return country
    return None


def readable(value: str) -> str:
    """ "DE" -> "Germany (DE)"; a name or an unknown code stays as it is."""
    country = country_of(value)
    if country is None or country.name.lower() == value.strip().lower():
        return value
    return f"{country.name} ({value})"
