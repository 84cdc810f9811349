"""DSTDH: Dual-level Semantic Transfer Deep Hashing.

Zhu, Cui, Cheng, Li and Zhang, "Dual-level semantic transfer deep hashing for efficient social
image retrieval", IEEE TCSVT 31(4), 2021 (arXiv 2006.05586), with details taken from the authors'
released Caffe and MATLAB code. Codes of the training images are learned from their noisy user
tags (instance level: ``Z = Y P + A`` with an l2,1 noise term) and from an image-concept hypergraph
(high-order level), regularised by an anchor graph over visual features and by agreement with the
hash network's outputs. The network is then trained to reproduce the codes, and the two steps
alternate.

Two variants:

``default``
    Row groups in the l2,1 norm (one per image), ``sigma_H`` from the data with each image in its
    nearest hyperedges only, the solver's real relative-decrease stopping test, several rounds of
    code learning and network training until the codes settle, and ``sign`` at encode time.
``released-code``
    What the released MATLAB code does: column groups, ``sigma_H = 40`` with a dense incidence,
    exactly 4 solver iterations, one round with ``H_x`` from the untrained hash layer, and a
    database-mean scalar threshold at encode time.

On the CPU path the backbone is frozen and the hash layer trains on cached features; the
``finetune`` parameter names the layers that train and only ``"none"`` is implemented.
"""

import logging

import numpy as np

from hashbench.codes import binarize, pack_codes
from hashbench.interface import Hasher
from hashbench.methods.dstdh.graphs import DeflatedAffinity, build_anchor_graph, build_hypergraph
from hashbench.methods.dstdh.network import make_hash_layer, network_outputs, train_hash_layer
from hashbench.methods.dstdh.solver import NOISE_GROUPS, SolverSettings, TagRegression, learn_codes
from hashbench.methods.itq import learn_itq_rotation, pca_directions
from hashbench.registry import register_method

logger = logging.getLogger(__name__)

VARIANTS = ("default", "released-code")

# Settings that the released-code variant fixes, whatever the definition file or --set says:
# the released script's weights, penalty schedule, graph sizes and its structural choices.
_RELEASED_CODE = {
    "alpha": 1e-2,
    "beta": 1e-3,
    "nu": 1e-3,
    "mu": 1e-2,
    "rho": 1.1,
    "n_hyperedges": 500,
    "n_anchors": 100,
    "anchors_per_item": 2,
    "noise_groups": "columns",
    "sigma_h": 40.0,
    "edges_per_item": None,
    "stopping": "fixed",
    "max_iter": 4,
    "rounds": 1,
    "threshold": "database-mean",
    "deflate_graphs": False,
}


def _check_positive(name, value, *, integer=False, allow_zero=False):
    kind = "an integer" if integer else "a number"
    valid_type = isinstance(value, (int, np.integer)) if integer else isinstance(value, (int, float, np.number))
    if isinstance(value, bool) or not valid_type or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {kind} {bound}, got {value!r}.")


@register_method("dstdh")
class DSTDH(Hasher):
    """Dual-level Semantic Transfer Deep Hashing on frozen backbone features.

    Parameters
    ----------
    n_bits : int, default=32
        Code length; a positive multiple of 8, at most the feature dimension.
    seed : int, default=0
        Seeds the ITQ rotation, both k-means runs, the hash layer, data order and dropout.
    variant : {"default", "released-code"}, default="default"
        See the module docstring; ``released-code`` overrides the settings it fixes.
    alpha, beta, nu : float
        Weights of the anchor graph, hypergraph and network-agreement terms.
    mu, rho : float
        Initial penalty of the augmented Lagrangian and its growth per iteration.
    max_iter : int
        Solver iterations per round at most.
    tol : float
        Relative objective decrease that stops the solver.
    n_hyperedges : int
        Hyperedges m_H (k-means centres of joint visual and tag vectors), capped below n.
    sigma_h : float or "auto"
        Hypergraph kernel width; ``"auto"`` is the mean distance to the ``edges_per_item``-th
        nearest hyperedge centre.
    edges_per_item : int or None
        Hyperedges kept per image (None keeps all, a dense incidence).
    n_anchors : int
        Anchors m_A, capped below n.
    anchors_per_item : int
        Nearest anchors s per image.
    noise_groups : {"rows", "columns"}
        Groups of the l2,1 noise norm.
    use_tags : bool
        False drops the tag constraint ``Z = Y P + A`` (for ablations).
    rounds : int
        Rounds of code learning plus network training at most.
    code_change_tol : float
        Fraction of changed bits between rounds below which the rounds stop.
    epochs, batch_size, lr, bias_lr, momentum, weight_decay, lr_step, dropout
        Hash layer training (SGD; the learning rate drops by 10 every ``lr_step`` epochs).
    itq_iter : int
        ITQ iterations of the initialisation.
    threshold : {"sign", "database-mean"}
        Binarisation at encode time.
    finetune : {"none"}
        Backbone layers that train; only ``"none"`` (cached features) is implemented.
    feature_scaling : {"none", "standardize"}
        Scaling of the backbone features fed to the hash layer; ``"standardize"`` uses the
        training mean and standard deviation of each feature.
    deflate_graphs : bool
        Remove the trivial eigenvector (eigenvalue 1) from both affinities, so the graph terms do
        not reward bits that are constant over all images.
    warm_start : bool
        Continue the augmented Lagrangian across rounds (keep A, E_A, E_B and mu) instead of
        restarting it from mu = ``mu`` in every round.

    Attributes
    ----------
    codes_ : ndarray of shape (n_train, n_bits), dtype int8
        Learned training codes.
    history_ : list of dict
        Per round: solver iterations, objectives, changed bits and training losses.
    """

    description = "Dual-level Semantic Transfer Deep Hashing from images and noisy tags (Zhu et al. 2021)"
    requires = frozenset({"features", "tags"})

    def __init__(self, *, n_bits=32, seed=0, variant="default", alpha=1e-2, beta=1e-3, nu=1e-3, mu=1e-2,
                 rho=1.1, max_iter=100, tol=1e-4, n_hyperedges=500, sigma_h="auto", edges_per_item=5,
                 n_anchors=100, anchors_per_item=2, noise_groups="rows", use_tags=True, rounds=3,
                 code_change_tol=0.005, epochs=18, batch_size=15, lr=0.01, bias_lr=0.02, momentum=0.9,
                 weight_decay=5e-4, lr_step=6, dropout=0.5, itq_iter=50, threshold="sign",
                 finetune="none", feature_scaling="none", deflate_graphs=True, warm_start=True):
        super().__init__(n_bits=n_bits, seed=seed)
        self.variant = variant
        self.alpha = alpha
        self.beta = beta
        self.nu = nu
        self.mu = mu
        self.rho = rho
        self.max_iter = max_iter
        self.tol = tol
        self.n_hyperedges = n_hyperedges
        self.sigma_h = sigma_h
        self.edges_per_item = edges_per_item
        self.n_anchors = n_anchors
        self.anchors_per_item = anchors_per_item
        self.noise_groups = noise_groups
        self.use_tags = use_tags
        self.rounds = rounds
        self.code_change_tol = code_change_tol
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.bias_lr = bias_lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_step = lr_step
        self.dropout = dropout
        self.itq_iter = itq_iter
        self.threshold = threshold
        self.finetune = finetune
        self.feature_scaling = feature_scaling
        self.deflate_graphs = deflate_graphs
        self.warm_start = warm_start

    # ------------------------------------------------------------------ settings

    def effective_params(self):
        """Return the parameters in force: the constructor's, with the variant's fixed values applied."""
        params = self.get_params()
        if self.variant == "released-code":
            params.update(_RELEASED_CODE)
        return params

    def _validate(self, n_samples, n_features):
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}.")
        p = self.effective_params()
        if self.n_bits > n_features:
            raise ValueError(
                f"n_bits must be at most n_features={n_features} (the ITQ initialisation projects on "
                f"n_bits principal directions), got {self.n_bits}."
            )
        for name in ("alpha", "beta", "nu"):
            _check_positive(name, p[name], allow_zero=True)
        for name in ("mu", "tol", "lr", "bias_lr"):
            _check_positive(name, p[name])
        _check_positive("momentum", p["momentum"], allow_zero=True)
        _check_positive("weight_decay", p["weight_decay"], allow_zero=True)
        if not p["rho"] >= 1:
            raise ValueError(f"rho must be >= 1 so the penalty does not shrink, got {p['rho']!r}.")
        for name in ("max_iter", "n_hyperedges", "n_anchors", "anchors_per_item", "rounds", "epochs",
                     "batch_size", "lr_step"):
            _check_positive(name, p[name], integer=True)
        _check_positive("itq_iter", p["itq_iter"], integer=True, allow_zero=True)
        if p["edges_per_item"] is not None:
            _check_positive("edges_per_item", p["edges_per_item"], integer=True)
        if p["sigma_h"] != "auto":
            _check_positive("sigma_h", p["sigma_h"])
        if not 0 <= p["dropout"] < 1:
            raise ValueError(f"dropout must be in [0, 1), got {p['dropout']!r}.")
        if p["noise_groups"] not in NOISE_GROUPS:
            raise ValueError(f"noise_groups must be one of {NOISE_GROUPS}, got {p['noise_groups']!r}.")
        if p["threshold"] not in ("sign", "database-mean"):
            raise ValueError(f"threshold must be 'sign' or 'database-mean', got {p['threshold']!r}.")
        if p["feature_scaling"] not in ("none", "standardize"):
            raise ValueError(f"feature_scaling must be 'none' or 'standardize', got {p['feature_scaling']!r}.")
        if p["finetune"] != "none":
            # TODO: fine-tuning backbone layers needs image-level training on a GPU; only the
            # frozen-backbone path on cached features exists.
            raise ValueError(
                f"finetune={p['finetune']!r} is not implemented; only 'none' (frozen backbone, cached "
                "features) is available."
            )
        for name in ("use_tags", "deflate_graphs", "warm_start"):
            if not isinstance(p[name], bool):
                raise ValueError(f"{name} must be true or false, got {p[name]!r}.")
        return p

    # ------------------------------------------------------------------ fitting

    def _fit(self, train, progress):
        features = train.features
        n, n_features = features.shape
        p = self._validate(n, n_features)
        self.n_features_in_ = n_features
        rng = np.random.default_rng(self.seed)

        # Feature views: L2-normalised rows for both graphs, centred rows for ITQ.
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        unit = features / np.maximum(norms, 1e-12)
        mean = features.mean(axis=0, dtype=np.float64)

        n_hyperedges = min(p["n_hyperedges"], n - 1)
        n_anchors = min(p["n_anchors"], n - 1)
        if n_hyperedges < p["n_hyperedges"] or n_anchors < p["n_anchors"]:
            logger.warning(
                "DSTDH: %d training items; capping hyperedges at %d (asked %d) and anchors at %d (asked %d)",
                n, n_hyperedges, p["n_hyperedges"], n_anchors, p["n_anchors"],
            )

        # Initialisation: PCA-ITQ codes of the centred features.
        centred = features - mean
        directions = pca_directions(centred, self.n_bits)
        rotation, _ = learn_itq_rotation(centred @ directions, p["itq_iter"], rng)
        initial = binarize(centred @ directions @ rotation)

        hypergraph, self.sigma_h_ = build_hypergraph(
            unit, train.tags, n_edges=n_hyperedges, sigma=p["sigma_h"], edges_per_item=p["edges_per_item"],
            rng=rng, progress=progress,
        )
        anchor_graph, self.sigma_a_ = build_anchor_graph(
            unit, n_anchors=n_anchors, anchors_per_item=p["anchors_per_item"], rng=rng, progress=progress,
        )
        if p["deflate_graphs"]:
            hypergraph, anchor_graph = DeflatedAffinity(hypergraph), DeflatedAffinity(anchor_graph)
        tags = TagRegression(train.tags)

        # Inputs of the hash layer.
        if p["feature_scaling"] == "standardize":
            self.input_mean_ = mean.astype(np.float32)
            self.input_scale_ = np.maximum(features.std(axis=0), 1e-6).astype(np.float32)
        else:
            self.input_mean_ = np.zeros(n_features, dtype=np.float32)
            self.input_scale_ = np.ones(n_features, dtype=np.float32)
        inputs = self._scale(features)

        settings = SolverSettings(
            alpha=p["alpha"], beta=p["beta"], nu=p["nu"], mu=p["mu"], rho=p["rho"], max_iter=p["max_iter"],
            tol=p["tol"], stopping=p.get("stopping", "objective"),
            noise_groups=p["noise_groups"], use_tags=p["use_tags"],
        )
        layer_seed = int(rng.integers(2**31))
        layer = make_hash_layer(n_features, self.n_bits, dropout=p["dropout"], seed=layer_seed)
        codes = initial
        state = None
        self.history_ = []

        # Alternate code learning (with H_x from the current network) and network training.
        for round_index in range(p["rounds"]):
            outputs = np.tanh(network_outputs(layer, inputs))
            result = learn_codes(codes, tags, hypergraph, anchor_graph, outputs, settings, state=state, progress=progress)
            if p["warm_start"]:
                state = result.state
            change = float(np.mean(result.codes != codes))
            codes = result.codes

            losses = train_hash_layer(
                layer, inputs, codes, epochs=p["epochs"], batch_size=p["batch_size"], lr=p["lr"],
                bias_lr=p["bias_lr"], momentum=p["momentum"], weight_decay=p["weight_decay"],
                lr_step=p["lr_step"], seed=int(rng.integers(2**31)), progress=progress,
            )
            agreement = float(np.mean(binarize(network_outputs(layer, inputs)) == codes))
            self.history_.append({
                "round": round_index + 1,
                "solver_iterations": result.n_iter,
                "objectives": result.objectives,
                "bits_changed": change,
                "noise_groups_active": result.noise_rows_active,
                "training_losses": losses,
                "network_agreement": agreement,
            })
            logger.info(
                "DSTDH round %d: %d solver iterations, %.2f%% of bits changed, network reproduces %.1f%% of bits",
                round_index + 1, result.n_iter, 100 * change, 100 * agreement,
            )
            if round_index > 0 and change < p["code_change_tol"]:
                break

        self.codes_ = codes
        self.initial_codes_ = initial
        self.layer_ = layer
        self.threshold_ = 0.0

    def _scale(self, features):
        return ((features - self.input_mean_) / self.input_scale_).astype(np.float32)

    # ------------------------------------------------------------------ encoding

    def calibrate(self, database_features):
        """Set the released-code scalar threshold: the mean of all database outputs over all bits.

        Has no effect with ``threshold="sign"``.
        """
        if self.effective_params()["threshold"] == "database-mean":
            outputs = network_outputs(self.layer_, self._scale(np.asarray(database_features, dtype=np.float32)))
            self.threshold_ = float(outputs.mean())
            logger.info("DSTDH: database-mean threshold %.6g", self.threshold_)
        return self

    def _encode(self, features):
        outputs = network_outputs(self.layer_, self._scale(features))
        return pack_codes(binarize(outputs - self.threshold_))
