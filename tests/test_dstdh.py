import numpy as np
import pytest
import scipy.sparse as sp

from hashbench.codes import unpack_codes
from hashbench.interface import TrainingSet
from hashbench.methods.dstdh import DSTDH
from hashbench.methods.dstdh.graphs import (
    AnchorGraphAffinity, HypergraphAffinity, build_anchor_graph, build_hypergraph, kmeans,
)
from hashbench.methods.dstdh.solver import SolverSettings, TagRegression, group_shrink, learn_codes


def _tags(n, c, rng, density=0.15):
    tags = (rng.random((n, c)) < density).astype(np.float32)
    tags[np.arange(n), rng.integers(c, size=n)] = 1.0  # every item has a tag
    return sp.csr_matrix(tags)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    n, d, c, r = 40, 12, 9, 8
    features = rng.standard_normal((n, d)).astype(np.float32)
    return {
        "features": features,
        "unit": features / np.linalg.norm(features, axis=1, keepdims=True),
        "tags": _tags(n, c, rng),
        "codes": np.where(rng.standard_normal((n, r)) >= 0, 1.0, -1.0),
        "outputs": np.tanh(rng.standard_normal((n, r))),
        "rng": rng,
    }


# --------------------------------------------------------------------------- factored graph products


@pytest.mark.parametrize("sparse_incidence", [False, True])
def test_hypergraph_product_matches_dense(problem, sparse_incidence):
    rng = problem["rng"]
    h = rng.random((40, 6))
    if sparse_incidence:
        h[h < 0.5] = 0.0
        h[np.arange(40), rng.integers(6, size=40)] = 0.7
    incidence = sp.csr_matrix(h) if sparse_incidence else h
    dv = h.sum(axis=1)
    de = h.sum(axis=0)
    dense = np.diag(dv**-0.5) @ h @ np.diag(1.0 / de) @ h.T @ np.diag(dv**-0.5)
    np.testing.assert_allclose(HypergraphAffinity(incidence).apply(problem["codes"]), dense @ problem["codes"], rtol=1e-12)


def test_anchor_product_matches_dense(problem):
    rng = problem["rng"]
    v = rng.random((40, 5)) * (rng.random((40, 5)) < 0.5)
    v[:, 0] += 0.1
    v /= v.sum(axis=1, keepdims=True)
    dense = v @ np.diag(1.0 / v.sum(axis=0)) @ v.T
    np.testing.assert_allclose(AnchorGraphAffinity(sp.csr_matrix(v)).apply(problem["codes"]), dense @ problem["codes"], rtol=1e-12)


def test_anchor_graph_rows_sum_to_one(problem):
    graph, _ = build_anchor_graph(problem["unit"], n_anchors=6, anchors_per_item=2, rng=np.random.default_rng(1))
    np.testing.assert_allclose(graph.weights.sum(axis=1), 1.0)
    assert graph.weights.getnnz(axis=1).max() == 2


def test_anchor_graph_affinity_is_doubly_stochastic(problem):
    graph, _ = build_anchor_graph(problem["unit"], n_anchors=6, anchors_per_item=2, rng=np.random.default_rng(1))
    np.testing.assert_allclose(graph.apply(np.ones((40, 1))), 1.0)


def test_hypergraph_incidence_matches_kernel(problem):
    graph, sigma = build_hypergraph(
        problem["unit"], problem["tags"], n_edges=5, sigma=0.8, edges_per_item=None, rng=np.random.default_rng(2)
    )
    assert sigma == 0.8
    assert graph.incidence.shape == (40, 5)
    assert np.all((graph.incidence > 0) & (graph.incidence <= 1))


def test_hypergraph_keeps_nearest_edges(problem):
    graph, sigma = build_hypergraph(
        problem["unit"], problem["tags"], n_edges=6, sigma="auto", edges_per_item=2, rng=np.random.default_rng(2)
    )
    assert graph.incidence.getnnz(axis=1).tolist() == [2] * 40
    assert sigma > 0


def test_kmeans_recovers_separated_clusters():
    rng = np.random.default_rng(3)
    centres = np.array([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0]])
    points = np.concatenate([c + rng.standard_normal((30, 2)) for c in centres]).astype(np.float32)
    found, _ = kmeans(points, None, n_clusters=3, rng=np.random.default_rng(0))
    distances = np.linalg.norm(found[:, None, :] - centres[None, :, :], axis=2)
    assert np.all(distances.min(axis=0) < 1.0)


def test_kmeans_with_sparse_block_matches_dense():
    rng = np.random.default_rng(4)
    dense = rng.standard_normal((50, 3)).astype(np.float32)
    tags = _tags(50, 4, rng)
    joint = np.hstack([dense, tags.toarray()])
    centres_dense, centres_tags = kmeans(dense, tags, n_clusters=4, rng=np.random.default_rng(7))
    reference, _ = kmeans(joint, None, n_clusters=4, rng=np.random.default_rng(7))
    np.testing.assert_allclose(np.hstack([centres_dense, centres_tags]), reference, atol=1e-5)


# --------------------------------------------------------------------------- solver updates


@pytest.mark.parametrize("groups", ["rows", "columns"])
def test_group_shrink_matches_loop(groups):
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((6, 4))
    threshold = 1.5
    expected = np.zeros_like(matrix)
    units = range(6) if groups == "rows" else range(4)
    for g in units:
        vector = matrix[g] if groups == "rows" else matrix[:, g]
        norm = np.linalg.norm(vector)
        shrunk = max(0.0, 1.0 - threshold / norm) * vector
        if groups == "rows":
            expected[g] = shrunk
        else:
            expected[:, g] = shrunk
    np.testing.assert_allclose(group_shrink(matrix, threshold, groups), expected)


def test_tag_regression_matches_pinv(problem):
    y = problem["tags"].toarray().astype(np.float64)
    target = problem["codes"]
    expected = np.linalg.pinv(y.T @ y) @ y.T @ target
    np.testing.assert_allclose(TagRegression(problem["tags"]).solve(target), expected, atol=1e-10)


def _dense_iterations(z, y, s_h, s_a, h_x, settings, n_iter):
    """The solver's update rules written out with dense n x n affinities."""
    n, r = z.shape
    a = np.zeros((n, r))
    e_a = np.zeros((n, r))
    e_b = np.zeros((n, r))
    mu = settings.mu
    pinv = np.linalg.pinv(y.T @ y)
    for _ in range(n_iter):
        p = pinv @ y.T @ (z - a + e_a / mu)
        t = z - y @ p + e_a / mu
        a = np.zeros_like(t)
        for i in range(n):
            norm = np.linalg.norm(t[i])
            if norm > 1.0 / mu:
                a[i] = (1.0 - (1.0 / mu) / norm) * t[i]
        b = z + (e_b + settings.beta * s_h @ z + settings.alpha * s_a @ z) / mu
        drive = mu * (y @ p + a + b) + settings.beta * s_h @ b + settings.alpha * s_a @ b - e_a - e_b + 2 * settings.nu * h_x
        z = np.where(drive >= 0, 1.0, -1.0)
        e_a = e_a + mu * (z - y @ p - a)
        e_b = e_b + mu * (z - b)
        mu *= settings.rho
    return z, p, a


@pytest.mark.parametrize("n_iter", [1, 2, 6])
def test_solver_matches_dense_updates(problem, n_iter):
    hypergraph, _ = build_hypergraph(problem["unit"], problem["tags"], n_edges=5, sigma="auto", edges_per_item=3,
                                     rng=np.random.default_rng(8))
    anchors, _ = build_anchor_graph(problem["unit"], n_anchors=6, anchors_per_item=2, rng=np.random.default_rng(9))
    # Large weights and a large initial penalty make every term, the noise term included, active.
    settings = SolverSettings(alpha=0.5, beta=0.5, nu=0.3, mu=0.8, rho=1.3, max_iter=n_iter, stopping="fixed")
    result = learn_codes(problem["codes"], TagRegression(problem["tags"]), hypergraph, anchors, problem["outputs"], settings)
    z, p, a = _dense_iterations(
        problem["codes"], problem["tags"].toarray().astype(np.float64), hypergraph.dense(), anchors.dense(),
        problem["outputs"], settings, n_iter,
    )
    assert result.n_iter == n_iter
    np.testing.assert_array_equal(result.codes, z)
    np.testing.assert_allclose(result.projection, p, atol=1e-8)
    np.testing.assert_allclose(result.noise, a, atol=1e-8)


def test_solver_noise_is_active_with_large_penalty(problem):
    settings = SolverSettings(alpha=0.5, beta=0.5, nu=0.3, mu=0.8, rho=1.3, max_iter=3, stopping="fixed")
    result = learn_codes(problem["codes"], TagRegression(problem["tags"]), None, None, problem["outputs"], settings)
    assert np.abs(result.noise).sum() > 0


def test_solver_fixed_stopping_runs_exactly(problem):
    settings = SolverSettings(max_iter=4, stopping="fixed")
    result = learn_codes(problem["codes"], TagRegression(problem["tags"]), None, None, problem["outputs"], settings)
    assert result.n_iter == 4


def test_solver_objective_stopping_stops_early(problem):
    settings = SolverSettings(max_iter=100, tol=1e-3, stopping="objective")
    result = learn_codes(problem["codes"], TagRegression(problem["tags"]), None, None, problem["outputs"], settings)
    assert result.n_iter < 100


def test_solver_codes_have_no_zeros(problem):
    settings = SolverSettings(alpha=0.0, beta=0.0, nu=0.0, max_iter=2, stopping="fixed", use_tags=False)
    zeros = np.zeros_like(problem["outputs"])
    result = learn_codes(problem["codes"], TagRegression(problem["tags"]), None, None, zeros, settings)
    assert set(np.unique(result.codes)) <= {-1, 1}


# --------------------------------------------------------------------------- the method


def _training_set(n=120, d=24, c=15, seed=0):
    rng = np.random.default_rng(seed)
    features = np.abs(rng.standard_normal((n, d))).astype(np.float32)
    return TrainingSet(ids=np.arange(n), features=features, tags=_tags(n, c, rng))


SMALL = {"n_hyperedges": 10, "n_anchors": 8, "epochs": 2, "batch_size": 15}


@pytest.mark.parametrize("variant", ["default", "released-code"])
def test_dstdh_same_seed_same_codes(variant):
    train = _training_set()
    first = DSTDH(n_bits=16, seed=4, variant=variant, **SMALL).fit(train).calibrate(train.features).encode(train.features)
    second = DSTDH(n_bits=16, seed=4, variant=variant, **SMALL).fit(train).calibrate(train.features).encode(train.features)
    np.testing.assert_array_equal(first, second)


def test_dstdh_seed_changes_codes():
    train = _training_set()
    first = DSTDH(n_bits=16, seed=1, **SMALL).fit(train).encode(train.features)
    second = DSTDH(n_bits=16, seed=2, **SMALL).fit(train).encode(train.features)
    assert not np.array_equal(first, second)


def test_released_code_variant_runs_four_iterations_once():
    model = DSTDH(n_bits=16, variant="released-code", **SMALL).fit(_training_set())
    assert [r["solver_iterations"] for r in model.history_] == [4]
    assert model.sigma_h_ == 40.0


def test_released_code_threshold_is_database_mean():
    train = _training_set()
    model = DSTDH(n_bits=16, variant="released-code", **SMALL).fit(train).calibrate(train.features)
    outputs = model.layer_(__import__("torch").from_numpy(model._scale(train.features))).detach().numpy()
    assert model.threshold_ == pytest.approx(float(outputs.mean()), rel=1e-5)
    expected = np.where(outputs - model.threshold_ >= 0, 1, -1)
    np.testing.assert_array_equal(unpack_codes(model.encode(train.features)), expected)


def test_default_variant_stops_rounds_when_codes_settle():
    model = DSTDH(n_bits=16, rounds=10, code_change_tol=0.5, **SMALL).fit(_training_set())
    assert len(model.history_) == 2


def test_dstdh_caps_graph_sizes_below_n(caplog):
    model = DSTDH(n_bits=8, n_hyperedges=500, n_anchors=100, epochs=1).fit(_training_set(n=30))
    assert model.codes_.shape == (30, 8)
    assert "capping hyperedges at 29" in caplog.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"variant": "fast"}, "variant must be one of"),
        ({"n_bits": 32}, "n_bits must be at most n_features=24"),
        ({"finetune": "all"}, "finetune='all' is not implemented"),
        ({"rho": 0.9}, "rho must be >= 1"),
        ({"dropout": 1.0}, "dropout must be in \\[0, 1\\)"),
        ({"n_anchors": 0}, "n_anchors must be an integer > 0, got 0"),
        ({"noise_groups": "cells"}, "noise_groups must be one of"),
    ],
)
def test_dstdh_rejects_bad_parameters(params, message):
    settings = {**SMALL, **params}
    n_bits = settings.pop("n_bits", 16)
    with pytest.raises(ValueError, match=message):
        DSTDH(n_bits=n_bits, **settings).fit(_training_set())


def test_dstdh_needs_tags():
    train = _training_set()
    with pytest.raises(ValueError, match="has no \\['tags'\\]"):
        DSTDH(n_bits=16, **SMALL).fit(TrainingSet(ids=train.ids, features=train.features))


def test_solver_state_continues_penalty(problem):
    settings = SolverSettings(mu=0.1, rho=2.0, max_iter=3, stopping="fixed")
    tags = TagRegression(problem["tags"])
    first = learn_codes(problem["codes"], tags, None, None, problem["outputs"], settings)
    second = learn_codes(first.codes, tags, None, None, problem["outputs"], settings, state=first.state)
    assert first.state.mu == pytest.approx(0.8)
    assert second.state.mu == pytest.approx(6.4)


def test_solver_state_split_matches_one_run(problem):
    settings = SolverSettings(alpha=0.5, beta=0.5, nu=0.3, mu=0.8, rho=1.3, max_iter=2, stopping="fixed")
    tags = TagRegression(problem["tags"])
    whole = learn_codes(problem["codes"], tags, None, None, problem["outputs"],
                        SolverSettings(alpha=0.5, beta=0.5, nu=0.3, mu=0.8, rho=1.3, max_iter=4, stopping="fixed"))
    first = learn_codes(problem["codes"], tags, None, None, problem["outputs"], settings)
    second = learn_codes(first.codes, tags, None, None, problem["outputs"], settings, state=first.state)
    np.testing.assert_array_equal(second.codes, whole.codes)
