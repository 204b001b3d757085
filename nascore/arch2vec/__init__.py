"""arch2vec: unsupervised architecture embeddings (Yan et al., NeurIPS 2020) for nascore spaces.

* :mod:`nascore.arch2vec.vgae` -- the variational graph isomorphism autoencoder;
* :mod:`nascore.arch2vec.pretrain` -- pretraining on a space, checkpoints, cached embeddings;
* :mod:`nascore.arch2vec.metrics` -- reconstruction / validity / uniqueness, latent-distance checks;
* :mod:`nascore.arch2vec.dngo` -- DNGO (neural network + Bayesian linear regression) for BO.

Search strategies: ``arch2vec-rl`` and ``arch2vec-bo`` (:mod:`nascore.strategies.arch2vec_rl`,
:mod:`nascore.strategies.arch2vec_bo`).
"""
