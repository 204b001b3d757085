"""Datasets for the weight-sharing searches: CIFAR-10/100 (:mod:`nascore.data.cifar`)."""
