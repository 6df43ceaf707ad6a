"""The exact slot probabilities of Thompson sampling over Beta posteriors, by quadrature.

Thompson sampling draws ``theta_i ~ Beta(a_i, b_i)`` for every arm and fills the explore slots
with the arms in decreasing ``theta``. The probability that arm ``i`` lands in slot ``s``
(0-based) is the probability that exactly ``s`` other arms draw more than it,

    P(slot s = i) = int f_i(x) PB_{-i}(s; x) dx,

with ``PB_{-i}(s; x)`` the Poisson-binomial probability that ``s`` of the others exceed ``x``
(each with probability ``1 - F_j(x)``). The probability that the first ``s`` slots hold
``o_1, ..., o_s`` in that order (the cascade; for the whole slate, the joint) is the nested
integral ``int f_o1 int_{<x1} f_o2 ... int_{<x_{s-1}} f_os prod_{j not in o} F_j``.

Neither has a closed form. Both are integrated on the logit axis ``u = log(x / (1 - x))``,
where every Beta density is smooth, bounded and log-concave, by Gauss-Legendre quadrature
(``_NODES`` nodes per cell) on cells whose edges are a uniform grid over the region where the
top slots are decided plus, for each arm that can reach them, edges at fixed multiples of its
posterior's logit standard deviation around its mode. Each arm's CDF at a node is its exact
``betainc`` value at the region's left end plus the integral of the Lagrange interpolant of
its density (the same rule nests for the cascade). Each arm's density is normalized to its
exact ``betainc`` mass in the region. No sampling is involved; the error is the
quadrature's: against an independent reference (exact ``betainc`` CDFs, midpoint rule on
60,000 logit cells) the marginals are within 2e-6 absolute and 1e-4 relative (those above
1e-4) and the cascade within 1e-4 relative, for broad, peaked, mixed and sub-1 posteriors
(``tests/blend/test_bandits.py``; 48 random posterior sets measured 5e-7 and 3e-5). Arms
whose whole posterior lies below the region (more than ``slots`` arms almost surely above
them) get tiny, not exact, marginals: they are drawn into the slots with probability below
about ``(slots + 1) * exp(-18)``.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import legendre
from scipy import special

#: Tail lengths on the logit axis: ``max(_SDS * sd, _RATE / a)`` below the mode (a logit-Beta
#: density's left tail decays like ``exp(a u)``, its right one like ``exp(-b u)``).
_SDS = 8.0
_RATE = 25.0
#: Each arm that can reach the top slots gets cells at most ``_WIDTH`` of its logit standard
#: deviations wide within ``_CORE`` of them from its mode.
_WIDTH = 0.75
_CORE = 6.0
_NODES = 3


def _gauss(q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes and weights of Gauss-Legendre on [0, 1], and ``cum[p, q] = int_0^{t_p} l_q``
    (the integral up to node ``p`` of the ``q``-th Lagrange basis polynomial)."""
    x, w = legendre.leggauss(q)
    t, w = (x + 1) / 2, w / 2
    inv = np.linalg.inv(np.vander(t, increasing=True))  # column q: coefficients of l_q
    powers = np.arange(1, q + 1)
    cum = (t[:, None] ** powers / powers) @ inv
    return t, w, cum


_T, _W, _CUM = _gauss(_NODES)


def _own_edges(mode: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """The multiples of ``2^floor(log2(_WIDTH * sd))`` within ``_CORE * sd`` of each mode: a
    dyadic grid as fine as each arm needs, shared by arms of similar posteriors."""
    if not len(mode):
        return np.empty(0)
    step = 2.0 ** np.floor(np.log2(_WIDTH * sd))
    first = np.ceil((mode - _CORE * sd) / step)
    count = np.floor((mode + _CORE * sd) / step) - first + 1
    k = first[:, None] + np.arange(int(count.max()))
    return (k * step[:, None])[k < (first + count)[:, None]]


class BetaQuadrature:
    """The quadrature of one set of Beta posteriors for the top ``slots`` slots.

    Parameters
    ----------
    a, b
        Beta parameters per arm (> 0).
    slots
        How many top slots matter: the region starts where more than ``slots`` arms lie above.
    grid
        Uniform cell edges over the region (on top of each arm's own edges).

    Attributes
    ----------
    dens
        ``(n, cells, nodes)``: each arm's density at the nodes (normalized: ``weight * dens``
        sums to the arm's mass in the region).
    cdf
        ``(n, cells, nodes)``: each arm's CDF at the nodes.
    weight
        ``(cells, nodes)``: the quadrature weights (cell width times Gauss weight).
    """

    def __init__(self, a: np.ndarray, b: np.ndarray, slots: int, grid: int = 24) -> None:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        n = len(a)
        mode = np.log(a / b)
        sd = np.sqrt(1.0 / a + 1.0 / b)
        lo = mode - np.maximum(_SDS * sd, _RATE / a)
        hi = mode + np.maximum(_SDS * sd, _RATE / b)
        left = np.sort(lo)[::-1][min(slots, n - 1)]  # more than ``slots`` arms lie above it
        right = float(hi.max())
        reach = hi >= left  # arms that can reach the top slots
        edges = np.concatenate([np.linspace(left, right, grid), _own_edges(mode[reach], sd[reach])])
        edges = np.unique(edges.clip(left, right))
        h = np.diff(edges)
        u = edges[:-1, None] + h[:, None] * _T  # (cells, nodes)
        logd = a[:, None, None] * u - (a + b)[:, None, None] * np.logaddexp(0.0, u)
        dens = np.exp(logd - logd.max(axis=(1, 2), keepdims=True))
        self.weight = h[:, None] * _W
        f_left = special.betainc(a, b, special.expit(left))
        f_right = special.betainc(a, b, special.expit(right))
        total = (dens * self.weight).sum(axis=(1, 2))
        dens *= ((f_right - f_left) / total)[:, None, None]
        self.dens = dens
        self.h = h
        self.cdf = np.clip(f_left[:, None, None] + self._cumulate(dens), 0.0, 1.0)

    def _cumulate(self, phi: np.ndarray) -> np.ndarray:
        """The integral from the region's left end up to each node of ``phi (..., cells,
        nodes)`` given at the nodes."""
        per_cell = (phi * self.weight).sum(-1)
        before = np.cumsum(per_cell, axis=-1) - per_cell
        return before[..., None] + self.h[:, None] * (phi @ _CUM.T)

    def rank_marginals(self, slots: int) -> np.ndarray:
        """``(slots, n)``: the probability that arm ``i`` holds slot ``s`` (is the ``s + 1``-th
        largest draw); rows are not renormalized.

        The leave-one-out Poisson-binomial of the others' exceedances comes from prefix and
        suffix products of the truncated generating polynomials ``prod_j (F_j + (1 - F_j) z)``
        (no division, so it stays exact where some ``F_j`` is 0).
        """
        n = len(self.dens)
        mass = (self.dens * self.weight).reshape(n, -1)
        below = self.cdf.reshape(n, -1)
        above = 1.0 - below
        points = below.shape[1]
        if slots == 1:  # P(i is max): the product of the others' CDFs
            pre = np.concatenate([np.ones((1, points)), np.cumprod(below, 0)[:-1]])
            suf = np.concatenate([np.cumprod(below[::-1], 0)[::-1][1:], np.ones((1, points))])
            return (mass * pre * suf).sum(1)[None]
        # both[k, 0]: the product over arms 0..k-1; both[k, 1]: over arms n-k..n-1 (one
        # loop builds the prefix and the suffix products together)
        both = np.zeros((n + 1, 2, slots, points))
        both[0, :, 0] = 1.0
        stay = np.stack([below, below[::-1]], axis=1)[:, :, None, :]
        move = np.stack([above, above[::-1]], axis=1)[:, :, None, :]
        for k in range(n):
            np.multiply(both[k], stay[k], out=both[k + 1])
            both[k + 1, :, 1:] += both[k, :, :-1] * move[k]
        pre = both[:n, 0]  # arms before i
        suf = both[n - 1 :: -1, 1]  # arms after i
        # pairs[i, t, r] = sum_x mass_i(x) pre_i(t; x) suf_i(r; x); slot s sums t + r = s
        pairs = np.matmul(mass[:, None, :] * pre, suf.transpose(0, 2, 1))
        out = np.zeros((slots, n))
        for t in range(slots):
            out[t:, :] += pairs[:, t, : slots - t].T
        return out

    def cascade(self, order: np.ndarray) -> np.ndarray:
        """``(len(order),)``: the probability that the first ``s + 1`` slots hold
        ``order[: s + 1]`` in that order (the last value: the whole slate's)."""
        out = np.empty(len(order))
        rest = np.ones(len(self.dens), dtype=bool)
        for s, arm in enumerate(order):
            rest[arm] = False
            phi = self.dens[arm] * np.prod(self.cdf[rest], axis=0)
            for prev in order[:s][::-1]:  # the earlier slot's draw is above the later one's
                phi = self.dens[prev] * self._cumulate(phi)
            out[s] = (phi * self.weight).sum()
        return out
