"""Fingerprint of the prepared MIT-BIH beats: to show a refactor changed no figure.

Prepares all 44 non-paced records with the default ``PrepConfig()`` into ``CACHE`` (give an empty
folder for a cold preparation) with whatever ``ecgnas`` is first on ``sys.path``, and prints JSON:
the prep and cache keys, the class counts and SHA-256 prefixes of ``x``, ``rr``, ``y``,
``sample``, ``record``, of the DS1 and DS2 rows and of the inter-patient split's indices. Run it
with two trees and compare (``benchmarks/RESULTS.md``, "Databases (issue 17)")::

    git worktree add /tmp/old <commit>
    NASCORE_DATA=../shared/data PYTHONPATH=/tmp/old python benchmarks/ecg_beats_identity.py /tmp/c-old > old.json
    NASCORE_DATA=../shared/data PYTHONPATH=.        python benchmarks/ecg_beats_identity.py /tmp/c-new > new.json
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    import ecgnas
    from ecgnas.data import PrepConfig, inter_patient_split, load_beats

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    t0 = time.time()
    b = load_beats(None, PrepConfig(), cache_dir=argv[0], progress=False, jobs=1)
    parts = inter_patient_split(b)

    def h(a):
        return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]

    ds1 = np.sort(np.concatenate([parts["train"], parts["val"]]))
    out = {"code": ecgnas.__file__, "prep_key": PrepConfig().key(), "cache_key": b.report["cache"]["key"],
           "n": len(b), "counts": b.class_counts(), "arrays": {k: h(getattr(b, k)) for k in ("x", "rr", "y", "sample")},
           "record": h(b.record.astype("U8")), "ds1_x": h(b.x[ds1]), "ds2_x": h(b.x[parts["test"]]),
           "split": {k: h(v) for k, v in parts.items()}, "seconds": round(time.time() - t0, 1)}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
