"""ECG search spaces, registered with :mod:`nascore.spaces` on import (nascore never imports ecgnas).

* ``ecg-cell`` -- the finite 1D cell space with searchable width and depth
  (:mod:`ecgnas.spaces.conv1d`);
* :class:`~ecgnas.spaces.constrained.ConstrainedSpace` -- any space with a cost model restricted
  to the architectures within parameter / FLOP / latency limits.

>>> import ecgnas.spaces
>>> from nascore.spaces import get_space
>>> get_space("ecg-cell").size
470596
"""

from __future__ import annotations

from nascore.spaces import register_space

from ecgnas.spaces.constrained import ConstrainedSpace
from ecgnas.spaces.conv1d import ECG_OPS, ECGCellNet, ECGCellSpace, ecg1d_opset, measure_latency_ms

register_space("ecg-cell", "ecgnas.spaces.conv1d:ECGCellSpace")

__all__ = ["ConstrainedSpace", "ECG_OPS", "ECGCellNet", "ECGCellSpace", "ecg1d_opset", "measure_latency_ms"]
