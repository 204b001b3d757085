"""DARTS-style weight-sharing search: dimension-generic op sets (:mod:`.ops`), supernets with
partial-channel mixed operations and genotype derivation (:mod:`.supernet`), the evaluation
network (:mod:`.evalnet`) and the training loops (:mod:`.train`). EG-NAS lives in :mod:`nascore.egnas`.
"""
