"""US state from a ZIP code, for the lead's time zone when the state itself is not given.

The first three digits of a ZIP code (its sectional centre) belong to one state; the ranges
below are the USPS assignment. Only the time zone uses this: a licence never treats a state
read from a postcode as the lead's jurisdiction.
"""

from __future__ import annotations

import bisect

# (first ZIP3 of a range, state); each range runs up to the next start. None = unassigned
# or military (APO/FPO), which has no state.
_RANGES: tuple[tuple[int, str | None], ...] = (
    (0, None), (5, "NY"), (6, "PR"), (8, "VI"), (9, "PR"), (10, "MA"), (28, "RI"), (30, "NH"),
    (39, "ME"), (50, "VT"), (55, "MA"), (56, "VT"), (60, "CT"), (70, "NJ"), (90, None),
    (100, "NY"), (150, "PA"), (197, "DE"), (200, "DC"), (201, "VA"), (202, "DC"), (206, "MD"),
    (220, "VA"), (247, "WV"), (270, "NC"), (290, "SC"), (300, "GA"), (320, "FL"), (340, None),
    (342, "FL"), (350, "AL"), (370, "TN"), (386, "MS"), (398, "GA"), (400, "KY"), (430, "OH"),
    (460, "IN"), (480, "MI"), (500, "IA"), (530, "WI"), (550, "MN"), (570, "SD"), (580, "ND"),
    (590, "MT"), (600, "IL"), (630, "MO"), (660, "KS"), (680, "NE"), (700, "LA"), (716, "AR"),
    (730, "OK"), (750, "TX"), (800, "CO"), (820, "WY"), (832, "ID"), (840, "UT"), (850, "AZ"),
    (870, "NM"), (885, "TX"), (889, "NV"), (900, "CA"), (962, None), (967, "HI"), (969, "GU"),
    (970, "OR"), (980, "WA"), (995, "AK"),
)
_STARTS = [start for start, _ in _RANGES]


def us_subdivision_for_zip(postcode: str | None) -> str | None:
    """"US-CA" for "94105" or "94105-1420"; None for anything that is not a ZIP code."""
    if not postcode:
        return None
    digits = postcode.strip().split("-")[0]
    if len(digits) != 5 or not digits.isdigit():
        return None
    state = _RANGES[bisect.bisect_right(_STARTS, int(digits[:3])) - 1][1]
    return f"US-{state}" if state else None
