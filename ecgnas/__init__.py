"""ecgnas: neural architecture search for ECG arrhythmia classification (MIT-BIH, AAMI EC57).

Builds on the generic :mod:`nascore` core; the dependency only goes this way.
"""

__version__ = "0.1.0"
