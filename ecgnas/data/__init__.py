"""MIT-BIH beats for AAMI classification: read, filter, window, RR features, cache, split.

Modules: :mod:`~ecgnas.data.mitdb` (WFDB reading, checksums, leads), :mod:`~ecgnas.data.preprocess`
(:class:`PrepConfig`, filters, windows, RR features), :mod:`~ecgnas.data.pipeline`
(:func:`load_beats`), :mod:`~ecgnas.data.spec` (:class:`DataSpec`: database, preparation, split;
databases are described in :mod:`ecgnas.datasets`), :mod:`~ecgnas.data.cache`, :mod:`~ecgnas.data.splits`,
:mod:`~ecgnas.data.rpeaks` (neurokit2 detector for unannotated recordings),
:mod:`~ecgnas.data.prepare` (``ecgnas prepare``). Dataset card: ``datasets/mitdb.md``.

Example::

    from ecgnas.data import PrepConfig, load_beats, inter_patient_split
    beats = load_beats(config=PrepConfig(), progress=False)   # cached after the first call
    split = inter_patient_split(beats)                        # train / val inside DS1, test = DS2
    xtr, ytr = beats.x[split["train"]], beats.y[split["train"]]
"""

from .beats import Beats
from .pipeline import load_beats
from .preprocess import PIPELINE_VERSION, PrepConfig
from .spec import DataSpec, data_dirs, extra_rows, patient_split
from .splits import DEFAULT_HOLDOUT, IntraPatientWarning, inter_patient_split, intra_patient_split, record_folds

__all__ = ["Beats", "DataSpec", "data_dirs", "extra_rows", "patient_split", "PrepConfig", "PIPELINE_VERSION", "load_beats", "inter_patient_split", "intra_patient_split", "record_folds",
           "DEFAULT_HOLDOUT", "IntraPatientWarning"]
