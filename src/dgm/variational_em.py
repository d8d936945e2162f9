"""An amortised, gradient-based E-step for a Gaussian mixture: variational EM in miniature.

EM's E-step sets q(z_i) to the exact posterior p(z_i | x_i, theta), one categorical per point. A
VAE instead *amortises* inference: one encoder q(z | x, phi) for all points, improved by gradient
ascent on the ELBO. Here the encoder is a softmax of features of x,

    q(z = k | x, phi) = softmax_k(h(x)^T phi),   phi: (F, K),

with h(x) linear ([1, x]) or quadratic ([1, x, x_a x_b for a <= b]). The exact posterior of a
Gaussian mixture has log-odds quadratic in x, so only the quadratic encoder can reach it: the
gap log p(x) - ELBO = KL(q || p(z | x)) then goes to zero, while the linear one keeps a gap (the
amortisation gap of Cremer et al., 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dgm.gmm import GMMParams, gmm_log_prob


def posterior_features(X: np.ndarray, kind: str) -> np.ndarray:
    """Encoder features h(x): X (n, m) -> (n, F); 'linear' [1, x], 'quadratic' adds x_a x_b (a <= b)."""
    if kind not in ("linear", "quadratic"):
        raise ValueError(f"kind must be 'linear' or 'quadratic', got {kind!r}")
    cols = [np.ones((X.shape[0], 1)), X]
    if kind == "quadratic":
        a, b = np.triu_indices(X.shape[1])
        cols.append(X[:, a] * X[:, b])  # (n, m (m + 1) / 2)
    return np.concatenate(cols, axis=1)


def _softmax(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = s - s.max(axis=1, keepdims=True)
    log_q = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return np.exp(log_q), log_q


def amortised_elbo(H: np.ndarray, phi: np.ndarray, log_joint: np.ndarray) -> tuple[float, np.ndarray]:
    """Average ELBO of q = softmax(H phi) and its gradient in phi: H (n, F), phi (F, K) -> (), (F, K).

    ELBO_i = sum_k q_ik (l_ik - log q_ik) with l_ik = log p(x_i, z_i = k); for q = softmax(s),
    dELBO_i / ds_ik = q_ik (l_ik - log q_ik - ELBO_i).
    """
    q, log_q = _softmax(H @ phi)  # (n, K)
    per_point = (q * (log_joint - log_q)).sum(axis=1)  # (n,)
    g = q * (log_joint - log_q - per_point[:, None])  # (n, K)
    return float(per_point.mean()), H.T @ g / H.shape[0]


@dataclass(frozen=True)
class AmortisedFit:
    """Gradient E-step with theta fixed: ELBO per step, and the exact log-likelihood it bounds."""

    kind: str
    elbos: np.ndarray  # (steps + 1,)
    log_likelihood: float
    phi: np.ndarray  # (F, K), for standardised features

    @property
    def gap(self) -> float:
        """log p(X) - ELBO at the end: the average KL(q(z | x) || p(z | x, theta))."""
        return self.log_likelihood - float(self.elbos[-1])


def fit_amortised_posterior(
    X: np.ndarray, params: GMMParams, kind: str, steps: int = 2000, lr: float = 0.05
) -> AmortisedFit:
    """Adam ascent on the ELBO in phi (theta = params fixed), from phi = 0 (q uniform)."""
    H = posterior_features(X, kind)
    mean, std = H[:, 1:].mean(axis=0), H[:, 1:].std(axis=0) + 1e-12
    H[:, 1:] = (H[:, 1:] - mean) / std  # standardised, bias column kept
    log_joint = gmm_log_prob(X, params)  # (n, K)
    top = log_joint.max(axis=1)
    log_lik = float(np.mean(top + np.log(np.exp(log_joint - top[:, None]).sum(axis=1))))
    phi = np.zeros((H.shape[1], params.n_components))
    m1, m2 = np.zeros_like(phi), np.zeros_like(phi)
    b1, b2 = 0.9, 0.999
    elbos = []
    for t in range(1, steps + 1):
        value, grad = amortised_elbo(H, phi, log_joint)
        elbos.append(value)
        m1 = b1 * m1 + (1 - b1) * grad
        m2 = b2 * m2 + (1 - b2) * grad**2
        phi = phi + lr * (m1 / (1 - b1**t)) / (np.sqrt(m2 / (1 - b2**t)) + 1e-8)
    elbos.append(amortised_elbo(H, phi, log_joint)[0])
    return AmortisedFit(kind, np.asarray(elbos), log_lik, phi)
