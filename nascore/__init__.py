"""nascore: a generic neural-architecture-search core.

Data flows one way: space -> strategy -> evaluator -> executor -> run folder -> report.
This package never imports ``ecgnas``.
"""

__version__ = "0.1.0"
