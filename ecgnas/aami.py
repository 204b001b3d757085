"""The AAMI EC57 beat classes and the MIT-BIH symbol mapping, pinned in one place.

======  ==========================================  ==========================
class   MIT-BIH beat annotation symbols             meaning
======  ==========================================  ==========================
N       N, L, R, e, j                               normal and bundle-branch / escape beats
S       A, a, J, S                                  supraventricular ectopic beats (SVEB)
V       V, E                                        ventricular ectopic beats (VEB)
F       F                                           fusion of ventricular and normal
Q       /, f, Q                                     paced, fusion of paced, unclassifiable
======  ==========================================  ==========================

Every other annotation symbol (rhythm changes ``+``, noise ``~``, ``|``, ``x``, ``!`` and so on)
is not a beat class here and is skipped, counted in the preparation report.

Records 102, 104, 107 and 217 contain paced beats; following AAMI EC57 and de Chazal et al.
(2004) they are excluded from both inter-patient datasets.

>>> SYMBOL_TO_CLASS["L"], CLASSES.index("V")
('N', 2)
"""

from __future__ import annotations

CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")

CLASS_SYMBOLS: dict[str, tuple[str, ...]] = {
    "N": ("N", "L", "R", "e", "j"),
    "S": ("A", "a", "J", "S"),
    "V": ("V", "E"),
    "F": ("F",),
    "Q": ("/", "f", "Q"),
}

SYMBOL_TO_CLASS: dict[str, str] = {s: c for c, syms in CLASS_SYMBOLS.items() for s in syms}

PACED_RECORDS: tuple[str, ...] = ("102", "104", "107", "217")

# de Chazal, O'Dwyer, Reilly (2004), IEEE TBME 51(7): the inter-patient split.
DS1: tuple[str, ...] = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122",
    "124", "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)
DS2: tuple[str, ...] = (
    "100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210",
    "212", "213", "214", "219", "221", "222", "228", "231", "232", "233", "234",
)

# Published beat counts per class (de Chazal 2004, Table I) that the pipeline must reproduce.
PUBLISHED_COUNTS: dict[str, dict[str, int]] = {
    "DS1": {"N": 45866, "S": 944, "V": 3788, "F": 415, "Q": 8},
    "DS2": {"N": 44259, "S": 1837, "V": 3221, "F": 388, "Q": 7},
}
