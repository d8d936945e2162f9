"""Training with the importance-weighted bound: the loss, its two gradient estimators, and their noise.

:func:`iwae_loss` is the batch mean of -L_K (Burda et al. 2016), for any model with the book's
``encode``/``decode`` interface. Its reparameterised gradient is, per example,

    grad L_K = E[ sum_k w~_k grad log w_k ],    w~_k = w_k / sum_j w_j,

and for the encoder's parameters its signal-to-noise ratio falls like 1/sqrt(K) as K grows
(Rainforth et al. 2018): its mean shrinks faster than its noise. The doubly reparameterised
estimator (DReG, Tucker et al. 2019) replaces the encoder's part by
sum_k w~_k^2 d log w_k / dz_k dz_k / dphi, with the same expectation, and its signal-to-noise ratio
does not fall. :func:`gradient_draws` and :func:`snr`
measure both. :class:`IWAEConvVAE` is the image VAE trained on L_K.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from dgm.iwae import iwae_bound, log_importance_weights, positive_integer
from dgm.training import release_freed_memory
from dgm.vae import ConvVAE

ESTIMATORS = ("iwae", "dreg")


def iwae_loss(
    model: nn.Module, x: torch.Tensor, k: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The batch mean of the negative one-draw estimate of L_K, differentiable: x (B, ...) -> ().

    For k = 1 it estimates the negative ELBO (with the KL term sampled rather than in closed form:
    the same expectation as ``model.loss(x)["elbo_loss"]``).
    """
    return -iwae_bound(model, x, k, generator=generator).mean()


def surrogates(
    model: nn.Module, x: torch.Tensor, k: int, estimator: str = "iwae"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two scalars whose gradients are the estimators: (for the encoder, for the decoder).

    ``"iwae"``: both are the one-draw L_K estimate (batch mean), whose gradient is the usual IWAE
    gradient. ``"dreg"``: the encoder's is sum_k stop(w~_k)^2 log w_k with q's parameters held
    fixed inside log q (gradients only through z), the decoder's sum_k stop(w~_k) log w_k.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; valid: {', '.join(ESTIMATORS)}")
    if estimator == "iwae":
        bound = -iwae_loss(model, x, k)
        return bound, bound
    log_w = log_importance_weights(model, x, k, chunk_size=k, detach_q=True)  # (B, k)
    w = torch.softmax(log_w, dim=1).detach()
    return (w**2 * log_w).sum(dim=1).mean(), (w * log_w).sum(dim=1).mean()


def gradient_draws(
    model: nn.Module, x: torch.Tensor, k: int, estimator: str = "iwae", n_draws: int = 100, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_draws`` independent estimates of the gradient of L_K on x (B, ...), for the encoder's
    parameters (``model.encoder``) and the decoder's (``model.decoder``): (n_draws, P) and (n_draws, Q).

    The noise comes from ``seed``; torch's global random stream is left as it was.
    """
    if n_draws < 2:
        raise ValueError(f"need at least two draws for a standard deviation, got {n_draws}")
    enc, dec = list(model.encoder.parameters()), list(model.decoder.parameters())
    grads_enc, grads_dec = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(n_draws):
            if i % 16 == 15:
                release_freed_memory()  # else the CPU heap grows with every draw (see there)
            s_enc, s_dec = surrogates(model, x, k, estimator)
            g_enc = torch.autograd.grad(s_enc, enc, retain_graph=True)
            g_dec = torch.autograd.grad(s_dec, dec)
            grads_enc.append(torch.cat([g.flatten() for g in g_enc]))
            grads_dec.append(torch.cat([g.flatten() for g in g_dec]))
    return torch.stack(grads_enc).double(), torch.stack(grads_dec).double()


def snr(draws: torch.Tensor) -> float:
    """The root mean square, over the columns that vary, of the signal-to-noise ratio |E g| / sd(g)
    of each column of draws (n, P).

    The plain ratio |mean| / sd of n draws is biased upwards: without any signal it is still about
    sqrt(2 / pi) / sqrt(n). Its square, mean^2 / sd^2, exceeds the true squared ratio by about 1 / n
    on average; so the squares are averaged over the columns, 1 / n is subtracted (floored at 0), and
    the square root is taken.
    """
    sd = draws.std(dim=0)
    keep = sd > 0  # a parameter no draw moves (a dead unit) has no ratio
    if not keep.any():
        raise ValueError("no parameter's gradient varies across the draws")
    squared = ((draws.mean(dim=0)[keep] / sd[keep]) ** 2).mean() - 1 / len(draws)
    return float(squared.clamp_min(0).sqrt())


def varying(draws: torch.Tensor) -> int:
    """How many columns of draws (n, P) vary at all (the others belong to units that are never active)."""
    return int((draws.std(dim=0) > 0).sum())


def mean_difference_z(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(mean of a - mean of b) / its standard error, per column, for independent draws a (n, P), b (m, P)."""
    se = torch.sqrt(a.var(dim=0) / len(a) + b.var(dim=0) / len(b))
    return (a.mean(dim=0) - b.mean(dim=0)) / se.clamp_min(torch.finfo(se.dtype).tiny)


@dataclass(frozen=True)
class GradientSNR:
    """Signal-to-noise ratio |E g| / sd(g) of a gradient estimator, averaged over parameters."""

    encoder: float
    decoder: float


def gradient_snr(
    model: nn.Module, x: torch.Tensor, k: int, estimator: str = "iwae", n_draws: int = 100, seed: int = 0
) -> GradientSNR:
    """The SNR of the encoder's and the decoder's gradient estimates (:func:`gradient_draws`, :func:`snr`)."""
    enc, dec = gradient_draws(model, x, k, estimator, n_draws, seed)
    return GradientSNR(encoder=snr(enc), decoder=snr(dec))


class IWAEConvVAE(ConvVAE):
    """:class:`ConvVAE` trained on ``iwae_loss``, the batch mean of -L_k; the ELBO's terms are monitored."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        k: int = 1,
    ) -> None:
        k = positive_integer("k", k)
        super().__init__(input_shape, n_latent, beta, channels)
        self.k = k

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {**super().loss(x), "iwae_loss": iwae_loss(self, x, self.k)}
