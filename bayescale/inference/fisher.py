"""Mass-matrix adaptation by minimising the Fisher divergence, from draws *and* gradients.

Seyboldt, Carlson and Carpenter, "Preconditioning Hamiltonian Monte Carlo by minimizing
Fisher divergence" (arXiv:2603.18845, 2026), as nutpie implements it.  For a Gaussian
posterior with covariance ``S`` the draws have covariance ``S`` and the gradients of the log
density ``S^-1``; the metric whose covariance ``C`` solves ``C Cov(grad) C = Cov(draws)`` (the
geometric mean of the two, a Fisher-divergence minimiser) is ``S`` itself, and it is found
from far fewer draws than a variance estimate alone, since every draw brings a gradient.

The inverse mass matrix has the low-rank-modified diagonal form of BlackJAX's
:class:`~blackjax.mcmc.metrics.LowRankInverseMassMatrix`::

    M^-1 = diag(sigma) (I + U (Lambda - I) U^T) diag(sigma)

1. ``sigma_i = sqrt(sd(draws_i) / sd(grads_i))``: the diagonal part, the exact scale of a
   Gaussian coordinate;
2. in the span of the scaled draws and gradients (the whole space when it is small), the
   geometric mean of their regularised covariances is eigendecomposed; eigenvalues far from 1
   (beyond ``cutoff`` either way) give the columns of ``U`` and the entries of ``Lambda`` (at
   most ``rank`` of them).

Every function here is pure and runs inside a compiled warm-up loop (no Python per draw):
:func:`buffer_init` / :func:`buffer_add` / :func:`buffer_switch` keep the recent draws and
gradients (nutpie's foreground and background windows), :func:`estimate` turns them into a
metric, :func:`from_curvature` gives the first metric from the curvature at the starting point.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from blackjax.mcmc.metrics import LowRankInverseMassMatrix

GAMMA = 1e-5  # regularisation of the covariances (nutpie's default)
# Eigenvalues kept: beyond this ratio either way.  nutpie documents 100, but on these posteriors
# the correlated amplitude/exponent pairs have Fisher eigenvalues of 15-25 after the diagonal
# scaling (chinchilla_epoch), so a cutoff of 100 keeps none and NUTS needs 31 steps per draw,
# where nutpie itself takes 4.5; with 2, 5.2 (gadre_overtrain 9.6, loss_to_loss 7.0; nutpie 9.7
# and 7.0).  Each kept direction costs O(dim) per leapfrog step, nothing next to a gradient.
CUTOFF = 2.0
CLAMP = (1e-20, 1e20)  # bounds of the diagonal variances
# Bounds of the low-rank eigenvalues.  Draws from the transient of a chain that starts far out
# (log density -3e4 against +2e3 at the mode on loss_to_loss) have gradients of 1e5; their
# covariance gave an eigenvalue that rounds to 0, a singular metric on which every transition
# diverged, so no draw joined the buffer again and the chain never recovered.  Bounded, such a
# direction only slows the chain until the next update replaces it.
EIGEN_BOUNDS = (1e-6, 1e6)


class Buffer(NamedTuple):
    """The most recent draws and gradients, in a ring of fixed size (one row per draw).

    ``count`` rows are in use: the last ``count`` written.  ``background`` of them arrived
    since the last switch.
    """

    draws: jax.Array
    grads: jax.Array
    position: jax.Array  # index the next row is written to
    count: jax.Array
    background: jax.Array


def buffer_init(size: int, dim: int) -> Buffer:
    zeros = jnp.zeros((size, dim))
    return Buffer(zeros, zeros, jnp.int32(0), jnp.int32(0), jnp.int32(0))


def buffer_add(buffer: Buffer, draw: jax.Array, grad: jax.Array, keep) -> Buffer:
    """``buffer`` with one more draw and its gradient, where ``keep`` (a divergent or
    non-finite transition's point is not kept)."""
    size = buffer.draws.shape[0]
    ok = keep & jnp.all(jnp.isfinite(draw)) & jnp.all(jnp.isfinite(grad))
    row = buffer.position
    added = Buffer(buffer.draws.at[row].set(draw), buffer.grads.at[row].set(grad), (row + 1) % size,
                   jnp.minimum(buffer.count + 1, size), buffer.background + 1)
    return jax.tree.map(lambda new, old: jnp.where(ok, new, old), added, buffer)


def buffer_switch(buffer: Buffer) -> Buffer:
    """Forget the draws before the last switch: the background window becomes the foreground."""
    return buffer._replace(count=jnp.minimum(buffer.background, buffer.count), background=jnp.int32(0))


def _mask(buffer: Buffer) -> jax.Array:
    size = buffer.draws.shape[0]
    age = (buffer.position - 1 - jnp.arange(size)) % size  # 0 for the newest row
    return age < buffer.count


def from_curvature(logdensity, x: jax.Array, rank: int) -> LowRankInverseMassMatrix:
    """The first metric: variances ``-1 / H_ii`` from the log density's Hessian at ``x``.

    The chains here start next to the posterior mode, where the gradient says nothing of the
    scales (nutpie's first metric, ``1 / |grad|``, is unbounded there) but the curvature
    does: the conditional variance of each coordinate.  Measured with 4 chains x 1000 warm-up
    draws: the first 50 warm-up draws took 80-130 leapfrog steps each with the gradient's
    metric capped at 1 (``loss_to_loss``, 30 simulated families), 31-56 with this one.  A
    coordinate without positive curvature there (a flat or saddle direction) keeps variance
    1, and all are capped at 1 (the model's unconstrained parameters are of order 1).  One
    Hessian costs ``dim`` gradient-vector products, once per chain.
    """
    precision = -jnp.diag(jax.hessian(logdensity)(x))
    var = jnp.where(jnp.isfinite(precision) & (precision > 0), 1.0 / precision, 1.0)
    var = jnp.clip(var, CLAMP[0], 1.0)
    return LowRankInverseMassMatrix(jnp.sqrt(var), jnp.zeros((x.shape[0], rank)), jnp.ones(rank))


def _sqrtm(eigenvalues, eigenvectors, power):
    return (eigenvectors * eigenvalues**power) @ eigenvectors.T


def spd_mean(a: jax.Array, b: jax.Array) -> jax.Array:
    """The geometric mean of ``a`` and ``b^-1``: the symmetric positive definite ``x`` with
    ``x b x = a``, i.e. ``b^-1/2 (b^1/2 a b^1/2)^1/2 b^-1/2``."""
    vals, vecs = jnp.linalg.eigh(b)
    vals = jnp.maximum(vals, 1e-300)
    b_half, b_inv_half = _sqrtm(vals, vecs, 0.5), _sqrtm(vals, vecs, -0.5)
    m_vals, m_vecs = jnp.linalg.eigh(b_half @ a @ b_half)
    return b_inv_half @ _sqrtm(jnp.maximum(m_vals, 0.0), m_vecs, 0.5) @ b_inv_half


def estimate(buffer: Buffer, rank: int, gamma: float = GAMMA, cutoff: float = CUTOFF
             ) -> LowRankInverseMassMatrix:
    """The metric that minimises the Fisher divergence to the buffer's draws and gradients.

    Shapes are fixed (the buffer's rows, ``rank`` columns of ``U``), so one compiled program
    serves every update; unused columns of ``U`` are zero with eigenvalue 1.
    """
    mask = _mask(buffer)[:, None]
    n = jnp.maximum(buffer.count, 1).astype(buffer.draws.dtype)
    x = jnp.where(mask, buffer.draws, 0.0)
    g = jnp.where(mask, buffer.grads, 0.0)
    x = jnp.where(mask, x - x.sum(0) / n, 0.0)
    g = jnp.where(mask, g - g.sum(0) / n, 0.0)
    sd_x, sd_g = jnp.sqrt((x**2).sum(0)), jnp.sqrt((g**2).sum(0))
    sigma = jnp.sqrt(sd_x / sd_g)
    sigma = jnp.where(jnp.isfinite(sigma) & (sigma > 0), sigma, 1.0)
    sigma = jnp.clip(sigma, jnp.sqrt(CLAMP[0]), jnp.sqrt(CLAMP[1]))
    xs, gs = x / (sigma * n), g * sigma / n  # rows: draws; columns: coordinates
    dim, rows = xs.shape[1], xs.shape[0]
    if dim <= 2 * rows:
        # The whole space: directions outside the span of the draws and gradients get
        # eigenvalue 1 below (both covariances are the identity there), so they are left as
        # they are, as nutpie's restriction to that span leaves them; and no decomposition
        # is needed to find the span (two SVDs and a QR were 70% of an update at dim 99).
        px, pg = xs.T, gs.T
        basis = None
    else:  # an orthonormal basis of the span, as nutpie finds it (one QR of both sets)
        basis = jnp.linalg.qr(jnp.concatenate([xs.T, gs.T], axis=1))[0]
        px, pg = basis.T @ xs.T, basis.T @ gs.T
    eye = jnp.eye(px.shape[0])
    mean = spd_mean(px @ px.T / gamma + eye, pg @ pg.T / gamma + eye)
    vals, vecs = jnp.linalg.eigh((mean + mean.T) / 2)
    far = (vals > cutoff) | (vals < 1.0 / cutoff)
    order = jnp.argsort(-jnp.where(far, jnp.abs(jnp.log(vals)), -1.0))[:rank]
    chosen = far[order]
    u = jnp.where(chosen, vecs[:, order] if basis is None else basis @ vecs[:, order], 0.0)
    lam = jnp.where(chosen, jnp.clip(vals[order], *EIGEN_BOUNDS), 1.0)
    return LowRankInverseMassMatrix(sigma, u, lam)


def finite(metric: LowRankInverseMassMatrix) -> jax.Array:
    """Whether every entry of ``metric`` is finite (an estimate that is not is not used)."""
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(metric)]))
