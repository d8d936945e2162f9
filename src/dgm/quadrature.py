"""The ELBO of a VAE with a low-dimensional latent, without sampling noise: Gauss-Hermite quadrature.

The expectation under q(z | x) in the ELBO's reconstruction term is a Gaussian integral; on a
tensor product of Gauss-Hermite nodes it is computed to high accuracy for latent dimensions up to
four, so that the 2d chapters can compare the ELBO with log p(x) to a ten-thousandth of a nat.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from dgm.elbo import negative_elbo_terms
from dgm.likelihood import check_inputs, eval_mode


def quadrature_elbo(
    model: nn.Module, x: torch.Tensor, n_nodes: int = 32, batch_size: int = 64
) -> torch.Tensor:
    """ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || N(0, I)) per example, without sampling noise:
    (B, D) -> (B,).

    The expectation under q(z | x) = N(mu_z, diag(std_z^2)) is computed by Gauss-Hermite
    quadrature with ``n_nodes`` nodes per latent dimension (z = mu_z + std_z * eps on the
    tensor-product nodes eps of N(0, I)); the KL term is the closed form. Exact for linear
    decoders; for ReLU decoders the kinks limit the error per example to about 1e-3 nats, and
    averages over many examples agree with the grid's log p(x) - KL(q || p(z | x)) to about
    1e-4. Any latent dimension up to 4 (cost n_nodes^d decoder calls per example).
    """
    device = check_inputs(model, x, max_latent=4)
    nodes, weights = np.polynomial.hermite_e.hermegauss(n_nodes)  # for the weight exp(-eps^2 / 2)
    nodes = torch.tensor(nodes, dtype=torch.float64, device=device)
    log_w = torch.log(torch.tensor(weights / weights.sum(), dtype=torch.float64, device=device))
    dtype = next(model.parameters()).dtype

    def elbo(xb: torch.Tensor) -> torch.Tensor:
        mu_z, log_std_z = (t.double() for t in model.encode(xb))  # (b, d) each
        b, d = mu_z.shape
        eps = torch.cartesian_prod(*[nodes] * d).view(-1, d)  # (K, d), K = n_nodes^d
        w = torch.cartesian_prod(*[log_w] * d).view(-1, d).sum(dim=1).exp()  # (K,)
        z = mu_z[:, None, :] + torch.exp(log_std_z)[:, None, :] * eps[None]  # (b, K, d)
        mu_x, log_std_x = (t.double() for t in model.decode(z.reshape(-1, d).to(dtype)))  # (b K, D)
        xr = xb.double().repeat_interleave(eps.shape[0], dim=0)  # (b K, D)

        def per_node(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(eps.shape[0], dim=0)  # (b, d) -> (b K, d)

        terms = negative_elbo_terms(xr, per_node(mu_z), per_node(log_std_z), mu_x, log_std_x)
        kl = terms.kl.view(b, -1)[:, 0]  # the closed form, the same at every node
        return -(terms.recon.view(b, -1) * w[None]).sum(dim=1) - kl

    return torch.cat([eval_mode(model, elbo, xb) for xb in x.split(batch_size)])
