"""The standard image VAE and four remedies for what it lacks, each built on one shared budget.

:data:`METHODS` names them: the standard :class:`dgm.vae.ConvVAE`, KL annealing and free bits
(:mod:`dgm.collapse`), a VampPrior (:mod:`dgm.priors`) and an inverse autoregressive flow
(:mod:`dgm.flows`). :func:`build` makes one, with the loss it is trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dgm.collapse import AnnealedConvVAE, FreeBitsConvVAE
from dgm.flows import IAFVAE
from dgm.image_training import ImageBudget
from dgm.priors import PriorVAE
from dgm.vae import ConvVAE

#: the standard VAE, then one remedy each
METHODS = ("standard", "KL annealing", "free bits", "VampPrior", "IAF")


@dataclass(frozen=True)
class Remedies:
    """What sets the four variants of the standard VAE apart."""

    warmup: float  # KL annealing: the fraction of the training steps over which beta_t rises to 1
    free_bits: float  # nats per latent dimension
    n_components: int  # the VampPrior's pseudo-inputs
    iaf_steps: int
    iaf_hidden: int

    def __post_init__(self) -> None:
        if not 0 < self.warmup <= 1 or self.free_bits < 0:
            raise ValueError(f"need 0 < warmup <= 1 and free_bits >= 0, got {self.warmup}, {self.free_bits}")


def build(method: str, shape: tuple[int, int, int], b: ImageBudget, r: Remedies, n_train: int):
    """The model of ``method`` (untrained), the loss it is trained on, and what sets it apart: its
    settings, for the checkpoint's key. ``b`` is the budget every method shares (the warm-up's steps
    count ``n_train`` images per epoch), ``r`` what sets the remedies apart."""
    common = (shape, b.n_latent, 1.0, b.channels)
    if method == "standard":
        return ConvVAE(*common), "elbo_loss", {}
    if method == "KL annealing":
        steps = max(1, round(r.warmup * b.epochs * math.ceil(n_train / b.batch_size)))
        return AnnealedConvVAE(*common, warmup_steps=steps), "annealed_loss", {"warmup_steps": steps}
    if method == "free bits":
        return FreeBitsConvVAE(*common, free_bits=r.free_bits), "free_bits_loss", {"kappa": r.free_bits}
    if method == "VampPrior":
        return PriorVAE(*common, kind="vamp", n_components=r.n_components), "elbo_loss", {"C": r.n_components}
    if method == "IAF":
        extra = {"steps": r.iaf_steps, "hidden": r.iaf_hidden}
        return IAFVAE(*common, n_steps=r.iaf_steps, hidden=r.iaf_hidden), "elbo_loss", extra
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
