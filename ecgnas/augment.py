"""Beat augmentations that imitate differences between patients and recordings.

A classifier judged on unseen patients must not lean on what makes a patient recognisable:
signal amplitude (electrode placement, body habitus), baseline wander, noise level, exact
R-peak alignment and heart rate (beat width). Each augmentation below perturbs one of these on a
batch of beat windows ``x`` float ``[B, C, L]`` (the window and its residual channel, see
:mod:`ecgnas.data.preprocess`), the same perturbation on every channel of a beat, so the residual
stays "window minus template" of the perturbed beat. All draws come from one ``torch.Generator``:
same seed, same batch -> same output. Every augmentation keeps the shape.

=========  ====================================================================================
name       what it does to each beat (independent draws per beat)
=========  ====================================================================================
scale      ``x *= s``, ``log s ~ U(-log 1.5, log 1.5)``: amplitude between 0.67x and 1.5x
wander     ``x += a sin(2π f t + φ)``, ``a ~ U(0, 0.1)`` mV, ``f ~ U(0.1, 0.6)`` Hz (baseline
           wander from breathing and electrode motion; Clifford et al. 2006, ch. 3)
noise      ``x += σ ε``, ``ε ~ N(0, 1)``, ``σ ~ U(0, 0.03)`` mV (muscle / amplifier noise)
shift      circular-free shift by ``k ~ U{-3..3}`` samples (edge-padded): R-peak jitter
stretch    time-stretch about the R peak by ``r ~ U(0.9, 1.1)`` (linear interpolation, edge
           values outside): QRS/QT width varies with patient and heart rate
rr         RR features ``rr *= exp(U(-0.05, 0.05))`` per beat and feature (rhythm jitter)
mix        mixup (Zhang et al. 2018, ICLR) between beats of the batch, ``λ ~ Beta(0.2, 0.2)``
           folded to ``max(λ, 1-λ)``; labels become ``λ y_i + (1-λ) y_j`` -- beats of different
           records blend, so no record's exact shape is a shortcut
=========  ====================================================================================

``mix`` changes labels and is applied by the trainer (:func:`mixup`), the others by
:func:`augment_batch`. Magnitudes are fixed (documented above); the set is chosen by name, e.g.
``TrainConfig(augment="scale,wander,noise,shift,stretch")``.

>>> import torch
>>> g = torch.Generator().manual_seed(0)
>>> x = torch.randn(4, 2, 126); rr = torch.ones(4, 5)
>>> xa, ra = augment_batch(x, rr, ("scale", "noise", "stretch", "rr"), peak=45, fs=180, generator=g)
>>> xa.shape == x.shape, ra.shape == rr.shape, bool((xa != x).any())
(True, True, True)
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from nascore.errors import UserError

AUGMENTATIONS = ("scale", "wander", "noise", "shift", "stretch", "rr", "mix")

SCALE_MAX = 1.5
WANDER_MV = 0.1
WANDER_HZ = (0.1, 0.6)
NOISE_MV = 0.03
SHIFT_SAMPLES = 3
STRETCH = 0.1
RR_JITTER = 0.05
MIX_ALPHA = 0.2


def parse_augment(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"scale, noise"`` / ``["scale", "noise"]`` / ``"none"`` / ``None`` -> a validated tuple.

    >>> parse_augment("scale, noise"), parse_augment("none")
    (('scale', 'noise'), ())
    >>> parse_augment("flip")
    Traceback (most recent call last):
    ...
    nascore.errors.UserError: augment: unknown augmentation 'flip' (choose from: scale, wander, noise, shift, stretch, rr, mix)
    """
    if spec is None:
        return ()
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    items = [s for s in items if s and s != "none"]
    for s in items:
        if s not in AUGMENTATIONS:
            raise UserError(f"augment: unknown augmentation {s!r} (choose from: {', '.join(AUGMENTATIONS)})")
    if len(set(items)) != len(items):
        raise UserError(f"augment: {spec!r} names an augmentation twice")
    return tuple(items)


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(n, generator=g)).to(device)


def _resample(x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of ``x`` [B, C, L] at fractional positions ``pos`` [B, L] (clamped)."""
    L = x.shape[-1]
    pos = pos.clamp(0, L - 1)
    lo = pos.floor().long().clamp(0, L - 1)
    hi = (lo + 1).clamp(max=L - 1)
    w = (pos - lo.to(pos.dtype)).unsqueeze(1)
    idx_lo = lo.unsqueeze(1).expand(-1, x.shape[1], -1)
    idx_hi = hi.unsqueeze(1).expand(-1, x.shape[1], -1)
    return x.gather(2, idx_lo) * (1 - w) + x.gather(2, idx_hi) * w


def augment_batch(x: torch.Tensor, rr: torch.Tensor, names: Sequence[str], peak: int, fs: int,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the label-preserving augmentations ``names`` (``mix`` is ignored here) to a batch.

    ``x`` float [B, C, L] (or [B, L]), ``rr`` float [B, n_rr]; ``peak``: R-peak index in the window;
    ``fs``: sampling rate (Hz). Random numbers are drawn on the CPU from ``generator`` (so results
    do not depend on the device) and moved to ``x``'s device. Returns new tensors, same shapes.
    """
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(1)
    B, _, L = x.shape
    dev = x.device
    g = generator
    if "stretch" in names or "shift" in names:
        base = torch.arange(L, dtype=torch.float32, device=dev).unsqueeze(0).expand(B, -1)
        r = _uniform(B, 1 - STRETCH, 1 + STRETCH, g, dev) if "stretch" in names else torch.ones(B, device=dev)
        k = (torch.randint(-SHIFT_SAMPLES, SHIFT_SAMPLES + 1, (B,), generator=g).to(dev).float()
             if "shift" in names else torch.zeros(B, device=dev))
        # output sample t shows input sample peak + (t - peak) / r - k
        pos = peak + (base - peak) / r.unsqueeze(1) - k.unsqueeze(1)
        x = _resample(x, pos)
    if "scale" in names:
        s = torch.exp(_uniform(B, -math.log(SCALE_MAX), math.log(SCALE_MAX), g, dev))
        x = x * s.view(B, 1, 1)
    if "wander" in names:
        t = torch.arange(L, dtype=torch.float32, device=dev) / float(fs)
        a = _uniform(B, 0.0, WANDER_MV, g, dev)
        f = _uniform(B, *WANDER_HZ, g, dev)
        phi = _uniform(B, 0.0, 2 * math.pi, g, dev)
        x = x + (a.unsqueeze(1) * torch.sin(2 * math.pi * f.unsqueeze(1) * t + phi.unsqueeze(1))).unsqueeze(1)
    if "noise" in names:
        sigma = _uniform(B, 0.0, NOISE_MV, g, dev)
        eps = torch.randn((B, 1, L), generator=g).to(dev)  # same noise on window and residual
        x = x + sigma.view(B, 1, 1) * eps
    if "rr" in names:
        rr = rr * torch.exp(_uniform(rr.numel(), -RR_JITTER, RR_JITTER, g, rr.device).view_as(rr))
    return (x.squeeze(1) if squeeze else x), rr


def mixup(x: torch.Tensor, rr: torch.Tensor, y_soft: torch.Tensor,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mixup of a batch with a random permutation of itself; ``y_soft`` float [B, K] (one-hot or smoothed).

    Per-beat ``λ ~ Beta(0.2, 0.2)`` folded to ``λ >= 0.5`` (each mixed beat stays closer to its own
    label). Inputs, RR features and labels are mixed with the same ``λ``.

    >>> g = torch.Generator().manual_seed(0)
    >>> x, rr, y = torch.randn(6, 2, 10), torch.randn(6, 5), torch.eye(5)[torch.tensor([0, 1, 2, 0, 1, 2])]
    >>> xm, rm, ym = mixup(x, rr, y, g)
    >>> xm.shape, bool(torch.allclose(ym.sum(1), torch.ones(6))), bool((ym.max(1).values >= 0.5).all())
    (torch.Size([6, 2, 10]), True, True)
    """
    B = x.shape[0]
    dev = x.device
    import numpy as np

    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    lam = torch.as_tensor(np.random.default_rng(seed).beta(MIX_ALPHA, MIX_ALPHA, B), dtype=x.dtype)
    lam = torch.maximum(lam, 1 - lam).to(dev)
    perm = torch.randperm(B, generator=generator).to(dev)
    lx = lam.view(B, *([1] * (x.dim() - 1)))
    return (lx * x + (1 - lx) * x[perm], lam.view(B, 1) * rr + (1 - lam.view(B, 1)) * rr[perm],
            lam.view(B, 1) * y_soft + (1 - lam.view(B, 1)) * y_soft[perm])
