"""A lead's IANA time zone from its jurisdiction, and whether that had to be a guess.

Single-zone countries are exact. Where a country spans zones, the subdivision decides for US
states, Canadian provinces and Australian states; a country-only lead in such a country, or a
subdivision that itself spans zones (Texas, Florida, ...), gets its most populous zone and is
marked `guessed` so that the decision says so.
"""

from __future__ import annotations

import functools
from importlib import resources

# Subdivision -> zone where a country spans zones. Subdivisions in SPLIT are mostly but not
# wholly in that zone (Texas' El Paso is Mountain, Florida's panhandle Central, ...).
SUBDIVISION_ZONES: dict[str, str] = {
    # United States
    **{f"US-{s}": "America/New_York" for s in (
        "CT DE DC FL GA IN KY ME MD MA MI NH NJ NY NC OH PA RI SC VT VA WV".split())},
    **{f"US-{s}": "America/Chicago" for s in (
        "AL AR IL IA KS LA MN MS MO NE ND OK SD TN TX WI".split())},
    **{f"US-{s}": "America/Denver" for s in "CO ID MT NM UT WY".split()},
    "US-AZ": "America/Phoenix",
    **{f"US-{s}": "America/Los_Angeles" for s in "CA NV OR WA".split()},
    "US-AK": "America/Anchorage",
    "US-HI": "Pacific/Honolulu",
    "US-PR": "America/Puerto_Rico",
    "US-GU": "Pacific/Guam",
    "US-VI": "America/St_Thomas",
    "US-AS": "Pacific/Pago_Pago",
    "US-MP": "Pacific/Saipan",
    # Canada
    "CA-NL": "America/St_Johns",
    **{f"CA-{s}": "America/Halifax" for s in "NS PE NB".split()},
    "CA-QC": "America/Toronto",
    "CA-ON": "America/Toronto",
    "CA-MB": "America/Winnipeg",
    "CA-SK": "America/Regina",
    "CA-AB": "America/Edmonton",
    "CA-BC": "America/Vancouver",
    "CA-YT": "America/Whitehorse",
    "CA-NT": "America/Yellowknife",
    "CA-NU": "America/Iqaluit",
    # Australia
    "AU-NSW": "Australia/Sydney",
    "AU-ACT": "Australia/Sydney",
    "AU-VIC": "Australia/Melbourne",
    "AU-QLD": "Australia/Brisbane",
    "AU-SA": "Australia/Adelaide",
    "AU-WA": "Australia/Perth",
    "AU-TAS": "Australia/Hobart",
    "AU-NT": "Australia/Darwin",
}

# The zones a split subdivision spans (its SUBDIVISION_ZONES entry first).
SPLIT_ZONES: dict[str, tuple[str, ...]] = {
    "US-AK": ("America/Anchorage", "America/Adak"),
    "US-AZ": ("America/Phoenix", "America/Denver"),
    "US-FL": ("America/New_York", "America/Chicago"),
    "US-ID": ("America/Denver", "America/Los_Angeles"),
    "US-IN": ("America/New_York", "America/Chicago"),
    "US-KS": ("America/Chicago", "America/Denver"),
    "US-KY": ("America/New_York", "America/Chicago"),
    "US-MI": ("America/New_York", "America/Chicago"),
    "US-ND": ("America/Chicago", "America/Denver"),
    "US-NE": ("America/Chicago", "America/Denver"),
    "US-NV": ("America/Los_Angeles", "America/Denver"),
    "US-OR": ("America/Los_Angeles", "America/Denver"),
    "US-SD": ("America/Chicago", "America/Denver"),
    "US-TN": ("America/Chicago", "America/New_York"),
    "US-TX": ("America/Chicago", "America/Denver"),
    "CA-ON": ("America/Toronto", "America/Winnipeg"),
    "CA-QC": ("America/Toronto", "America/Halifax"),
    "CA-BC": ("America/Vancouver", "America/Edmonton"),
    "CA-NU": ("America/Iqaluit", "America/Winnipeg", "America/Edmonton"),
    "CA-NL": ("America/St_Johns", "America/Halifax"),
    "AU-NSW": ("Australia/Sydney", "Australia/Broken_Hill"),
}

SPLIT = frozenset(SPLIT_ZONES)
_US_TERRITORIES = frozenset({"US-PR", "US-GU", "US-VI", "US-AS", "US-MP"})

# Most populous zone of countries that span several (used for a country-only lead).
PRINCIPAL_ZONES: dict[str, str] = {
    "US": "America/New_York",
    "CA": "America/Toronto",
    "AU": "Australia/Sydney",
    "RU": "Europe/Moscow",
    "BR": "America/Sao_Paulo",
    "MX": "America/Mexico_City",
    "ID": "Asia/Jakarta",
    "KZ": "Asia/Almaty",
    "CN": "Asia/Shanghai",
    "AR": "America/Argentina/Buenos_Aires",
    "ES": "Europe/Madrid",
    "PT": "Europe/Lisbon",
    "CL": "America/Santiago",
    "NZ": "Pacific/Auckland",
    "DE": "Europe/Berlin",
    "MN": "Asia/Ulaanbaatar",
    "CD": "Africa/Kinshasa",
    "UA": "Europe/Kyiv",
    "EC": "America/Guayaquil",
    "MY": "Asia/Kuala_Lumpur",
    "FM": "Pacific/Pohnpei",
    "KI": "Pacific/Tarawa",
    "PF": "Pacific/Tahiti",
    "UZ": "Asia/Tashkent",
    "CY": "Asia/Nicosia",
    "GL": "America/Nuuk",
    "PS": "Asia/Gaza",
    "UM": "Pacific/Midway",
    "AQ": "Antarctica/McMurdo",
}


# Countries whose several zones keep the same clock all year (Busingen = Berlin, Kuching =
# Kuala Lumpur, ...): the principal zone is exact there, not a guess.
SAME_CLOCK = frozenset({"DE", "CY", "MY", "UZ", "AR"})


@functools.lru_cache(maxsize=1)
def _country_zones() -> dict[str, tuple[str, ...]]:
    """Country -> its zones, from the tzdata package's zone.tab (shipped data, no network)."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text("utf-8")
    zones: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        zones.setdefault(fields[0], []).append(fields[2])
    return {country: tuple(z) for country, z in zones.items()}


@functools.lru_cache(maxsize=8192)
def zone_for(country: str, subdivision: str | None) -> tuple[str | None, bool]:
    """Return (IANA zone or None, guessed) for a jurisdiction."""
    if subdivision is not None and subdivision in SUBDIVISION_ZONES:
        return SUBDIVISION_ZONES[subdivision], subdivision in SPLIT
    zones = _country_zones().get(country, ())
    if len(zones) == 1:
        return zones[0], False
    if not zones:
        return None, True
    return PRINCIPAL_ZONES.get(country, zones[0]), country not in SAME_CLOCK


@functools.lru_cache(maxsize=8192)
def possible_zones(country: str, subdivision: str | None) -> tuple[str, ...]:
    """Every zone a lead of this jurisdiction may be in: one where `zone_for` is exact, all of
    them where it had to guess (so that a contact window can be made to hold in each)."""
    zone, guessed = zone_for(country, subdivision)
    if zone is None:
        return ()
    if not guessed:
        return (zone,)
    if subdivision in SPLIT_ZONES:
        return SPLIT_ZONES[subdivision]
    if country == "US":   # the states' zones (territories have their own country codes)
        return tuple(dict.fromkeys(
            z for code, z in SUBDIVISION_ZONES.items()
            if code.startswith("US-") and code not in _US_TERRITORIES) | dict.fromkeys(
            SPLIT_ZONES["US-AK"]))
    return _country_zones().get(country, (zone,))
