"""``ecgnas`` sub-commands, one module each (``register(subparsers)``, listed in ``ecgnas.cli``).

* :mod:`.train` -- ``ecgnas train``: one model, early-stopped on the DS1 hold-out, evaluated on DS2;
* :mod:`.evaluate` -- ``ecgnas evaluate RUN``: re-evaluate a run's checkpoint;
* :mod:`.baseline` -- ``ecgnas baseline random-search``: the hand-designed random-search baseline.
"""
