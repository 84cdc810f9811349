"""DSTDH code learning: the augmented-Lagrangian solver for the binary codes Z.

The codes ``Z in {-1, +1}^{n x r}`` of the training images solve::

    min  ||A||_{2,1} - beta tr(B^T S_H Z) - alpha tr(B^T S_A Z) + nu ||Z - H_x||_F^2
    s.t. Z = Y P + A,  Z = B

with tags ``Y`` (n x c), a tag-to-code projection ``P`` (c x r), a noise matrix ``A`` whose l2,1 norm
absorbs tag noise, and a real copy ``B`` of Z. Multipliers ``E_A``, ``E_B`` and the penalty ``mu``
give every sub-problem a closed form (Zhu, Cui, Cheng, Li and Zhang, "Dual-level semantic transfer
deep hashing for efficient social image retrieval", IEEE TCSVT 31(4), 2021, and the authors'
released MATLAB code). Each iteration, in order:

1. ``P = pinv(Y^T Y) Y^T (Z - A + E_A / mu)``
2. ``A = group-shrink(Z - Y P + E_A / mu, 1 / mu)`` over rows or columns
3. ``B = Z + (E_B + beta S_H Z + alpha S_A Z) / mu``
4. ``Z = sign(mu (Y P + A + B) + beta S_H B + alpha S_A B - E_A - E_B + 2 nu H_x)``
5. ``E_A += mu (Z - Y P - A)``, ``E_B += mu (Z - B)``, ``mu *= rho``
"""

import logging
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from hashbench.codes import binarize
from hashbench.progress import NULL_PROGRESS

logger = logging.getLogger(__name__)

#: Accepted grouping of the l2,1 norm: one group per image (row) or per bit (column).
NOISE_GROUPS = ("rows", "columns")


def group_shrink(matrix, threshold, groups):
    """Proximal operator of ``threshold * ||.||_{2,1}``: shrink each group's l2 norm by ``threshold``.

    Parameters
    ----------
    matrix : ndarray of shape (n, r)
    threshold : float
        Non-negative shrinkage amount (``1 / mu`` in the solver).
    groups : {"rows", "columns"}
        Whether each row or each column is one group.

    Returns
    -------
    ndarray of shape (n, r)
        Each group ``g`` becomes ``max(0, 1 - threshold / ||g||) g``; a zero group stays zero.
    """
    if groups not in NOISE_GROUPS:
        raise ValueError(f"groups must be one of {NOISE_GROUPS}, got {groups!r}.")
    axis = 1 if groups == "rows" else 0
    norms = np.linalg.norm(matrix, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
    return matrix * scale


def l21_norm(matrix, groups):
    """Return the l2,1 norm: the sum of the l2 norms of the rows or columns."""
    axis = 1 if groups == "rows" else 0
    return float(np.linalg.norm(matrix, axis=axis).sum())


@dataclass
class SolverSettings:
    """Weights and schedule of the code-learning solver.

    Attributes
    ----------
    alpha, beta, nu : float
        Weights of the anchor graph, hypergraph and network-agreement terms.
    mu, rho : float
        Initial penalty and its growth factor per iteration.
    max_iter : int
        Iteration limit.
    tol : float
        Relative objective change below which the solver stops (with ``stopping="objective"``).
    stopping : {"objective", "fixed"}
        ``"objective"`` stops when ``|L_{t-1} - L_t| / |L_{t-1}|`` falls below ``tol`` (checked
        from the second iteration on); ``"fixed"`` runs exactly ``max_iter`` iterations.
    noise_groups : {"rows", "columns"}
        Groups of the l2,1 norm.
    use_tags : bool
        False drops the constraint Z = Y P + A (the instance-level transfer), for ablations.
    """

    alpha: float = 1e-2
    beta: float = 1e-3
    nu: float = 1e-3
    mu: float = 1e-2
    rho: float = 1.1
    max_iter: int = 100
    tol: float = 1e-4
    stopping: str = "objective"
    noise_groups: str = "rows"
    use_tags: bool = True


@dataclass
class SolverResult:
    """Output of ``learn_codes``.

    Attributes
    ----------
    codes : ndarray of shape (n, r), dtype int8
        Learned codes Z in {-1, +1}.
    projection : ndarray of shape (c, r), dtype float64
        Tag-to-code projection P.
    noise : ndarray of shape (n, r), dtype float64
        Noise matrix A.
    n_iter : int
        Iterations run.
    objectives : list of float
        Objective after each iteration.
    bits_changed : float
        Fraction of bits that differ from the initial codes.
    """

    codes: np.ndarray
    projection: np.ndarray
    noise: np.ndarray
    n_iter: int
    objectives: list = field(default_factory=list)
    bits_changed: float = 0.0
    noise_rows_active: float = 0.0
    state: "SolverState" = None


class TagRegression:
    """Least-squares solver for ``P = pinv(Y^T Y) Y^T M`` with the pseudo-inverse computed once.

    Parameters
    ----------
    tags : scipy.sparse matrix of shape (n, c)
    """

    def __init__(self, tags):
        self.tags = sp.csr_matrix(tags, dtype=np.float64)
        gram = (self.tags.T @ self.tags).toarray()
        self.gram_pinv = np.linalg.pinv(gram, hermitian=True)

    def solve(self, target):
        """Return P of shape (c, r) for a target M of shape (n, r)."""
        return self.gram_pinv @ np.asarray(self.tags.T @ target)

    def predict(self, projection):
        """Return ``Y P`` of shape (n, r)."""
        return np.asarray(self.tags @ projection)


def objective(noise, codes, real_codes, hypergraph_codes, anchor_codes, network_outputs, settings):
    """Return the DSTDH objective for the current variables.

    ``hypergraph_codes`` and ``anchor_codes`` are ``S_H Z`` and ``S_A Z``, passed in because the
    solver has them already.
    """
    value = l21_norm(noise, settings.noise_groups) if settings.use_tags else 0.0
    value -= settings.beta * float(np.sum(real_codes * hypergraph_codes))
    value -= settings.alpha * float(np.sum(real_codes * anchor_codes))
    value += settings.nu * float(np.sum((codes - network_outputs) ** 2))
    return value


@dataclass
class SolverState:
    """Variables of the augmented Lagrangian besides Z, carried from one round to the next.

    Attributes
    ----------
    noise : ndarray of shape (n, r)
        Noise matrix A.
    multiplier_a, multiplier_b : ndarray of shape (n, r)
        Multipliers E_A and E_B.
    mu : float
        Current penalty.
    """

    noise: np.ndarray
    multiplier_a: np.ndarray
    multiplier_b: np.ndarray
    mu: float


def learn_codes(initial_codes, tags, hypergraph, anchor_graph, network_outputs, settings, *, state=None,
                progress=NULL_PROGRESS):
    """Run the augmented-Lagrangian iterations from initial codes.

    Parameters
    ----------
    initial_codes : ndarray of shape (n, r)
        Starting codes in {-1, +1} (PCA-ITQ codes in the first round).
    tags : TagRegression
        Tag matrix with its cached pseudo-inverse.
    hypergraph : HypergraphAffinity or None
        ``S_H``; None (or beta = 0) drops the term.
    anchor_graph : AnchorGraphAffinity or None
        ``S_A``; None (or alpha = 0) drops the term.
    network_outputs : ndarray of shape (n, r)
        ``H_x = tanh(F(X))``, the current network outputs on the training images.
    settings : SolverSettings
    state : SolverState, optional
        Continue from these variables (a later round of the joint loop); None starts from
        A = E_A = E_B = 0 and ``mu = settings.mu``.

    Returns
    -------
    SolverResult
    """
    z = np.asarray(initial_codes, dtype=np.float64)
    n, r = z.shape
    network_outputs = np.asarray(network_outputs, dtype=np.float64)
    if state is None:
        state = SolverState(noise=np.zeros((n, r)), multiplier_a=np.zeros((n, r)), multiplier_b=np.zeros((n, r)),
                            mu=float(settings.mu))
    noise = state.noise.copy()
    multiplier_a = state.multiplier_a.copy()
    multiplier_b = state.multiplier_b.copy()
    mu = float(state.mu)

    def apply_hypergraph(matrix):
        if hypergraph is None or settings.beta == 0:
            return np.zeros_like(matrix)
        return hypergraph.apply(matrix)

    def apply_anchor(matrix):
        if anchor_graph is None or settings.alpha == 0:
            return np.zeros_like(matrix)
        return anchor_graph.apply(matrix)

    objectives = []
    projection = np.zeros((tags.tags.shape[1], r))
    iteration = 0
    with progress.task("DSTDH code learning", total=settings.max_iter) as advance:
        for iteration in range(1, settings.max_iter + 1):
            hyper_z = apply_hypergraph(z)
            anchor_z = apply_anchor(z)

            if settings.use_tags:
                # 1. Tag regression, then 2. group soft-threshold of the residual at 1/mu.
                projection = tags.solve(z - noise + multiplier_a / mu)
                predicted = tags.predict(projection)
                noise = group_shrink(z - predicted + multiplier_a / mu, 1.0 / mu, settings.noise_groups)

            # 3. Real copy B.
            real = z + (multiplier_b + settings.beta * hyper_z + settings.alpha * anchor_z) / mu

            # 4. Binary codes; an exact zero becomes +1 in binarize.
            drive = mu * real + settings.beta * apply_hypergraph(real) + settings.alpha * apply_anchor(real)
            drive += 2.0 * settings.nu * network_outputs - multiplier_b
            if settings.use_tags:
                drive += mu * (predicted + noise) - multiplier_a
            z = binarize(drive).astype(np.float64)

            # 5. Multipliers and penalty.
            if settings.use_tags:
                multiplier_a += mu * (z - predicted - noise)
            multiplier_b += mu * (z - real)
            mu *= settings.rho

            value = objective(noise, z, real, apply_hypergraph(z), apply_anchor(z), network_outputs, settings)
            objectives.append(value)
            logger.debug(
                "iteration %d: objective %.6g, mu %.4g, active noise groups %d",
                iteration, value, mu, int(np.count_nonzero(np.linalg.norm(noise, axis=1 if settings.noise_groups == "rows" else 0))),
            )
            advance(1)

            # Stop when the objective has settled: its relative change, in either direction, is
            # below tol. A one-sided test would also stop on the first increase, which the
            # augmented Lagrangian makes common in its early iterations.
            if settings.stopping == "objective" and len(objectives) >= 2:
                previous = objectives[-2]
                change = abs(previous - value) / max(abs(previous), 1e-12)
                if change < settings.tol:
                    break

    codes = z.astype(np.int8)
    changed = float(np.mean(codes != np.asarray(initial_codes)))
    axis = 1 if settings.noise_groups == "rows" else 0
    active = float(np.mean(np.linalg.norm(noise, axis=axis) > 0))
    logger.info(
        "DSTDH code learning: %d iterations, objective %.6g, %.2f%% of bits changed, %.1f%% noise groups active",
        iteration, objectives[-1] if objectives else float("nan"), 100 * changed, 100 * active,
    )
    return SolverResult(
        codes=codes, projection=projection, noise=noise, n_iter=iteration,
        objectives=objectives, bits_changed=changed, noise_rows_active=active,
        state=SolverState(noise=noise, multiplier_a=multiplier_a, multiplier_b=multiplier_b, mu=mu),
    )
