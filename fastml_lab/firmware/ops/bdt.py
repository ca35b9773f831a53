"""The boosted-decision-tree ensemble as one firmware op (``"bdt"``): conifer's HLS and VHDL arithmetic, exactly.

What conifer's ``xilinxhls`` backend (``BDT_unrolled.h``, its ``parameters.h`` and ``bridge.cpp``)
computes for one event, and so what :class:`Ensemble` computes for a batch:

1. each input is cast from double to ``input_t`` (done by :class:`~fastml_lab.emulator.Firmware`);
2. every split node compares ``input_t(x[feature] * weight_t(1))`` with its ``threshold_t``
   threshold, ``x < t`` (xgboost, ydf) or ``x <= t`` (sklearn, TMVA), as the split convention says;
   the value compared is ``x`` itself whenever ``weight_t`` holds 1, as the export makes sure;
3. the active leaf's value (a ``score_t``) is the tree's score;
4. per class, the tree scores are summed by conifer's balanced adder tree (``reduce``: the first
   ``2**floor(log2(n - 1))`` trees, then the rest, recursively), each sum cast to ``score_t``;
5. ``score = score_t(init_predict + sum)``, then ``score = score_t(score * norm)``.

conifer's ``vhdl`` backend (``reduction: "vhdl"``) computes steps 1-3 alike (its trees padded to
full depth, where a padded node always goes left: the same leaf value) and sums differently, in the
W-bit two's complement of its one type (input, threshold and score types are one there):

4'. ``AddReduce`` adds the tree scores *and* ``init_predict`` (an extra leaf) pairwise in a tree of
    registers, each sum as wide as its operands: it wraps around, whatever the type's overflow mode
    says. Wrap-around addition is addition modulo ``2**W``, so neither the pairing order nor where
    ``init_predict`` joins changes the result: ``total = wrap(init_predict + sum of the scores)``;
5'. unless the normalisation's stored integer is 1 (conifer's VHDL compares the integer, not the
    value), ``total * norm`` (2W bits) is sliced to bits ``2W - I - 1`` down to ``F`` (I integer,
    F fractional bits): the product shifted right by F (floor, whatever the rounding mode), then
    wrapped to W bits.

The VHDL arithmetic is computed on the stored integers (int64), exactly, for widths up to 32 bits
(VHDL's integers, through which its testbench reads and writes the values).

Constants (thresholds, leaf values, ``init_predict``, ``norm``) are stored as the integers of their
types, read from the decimal literals of the generated C++ and cast as the compiler does.

Numpy only: this module runs on the board.
"""

from __future__ import annotations

import numpy as np

from ...exceptions import UnsupportedError
from ..registry import INT, STR, TYPE, Field, Op, register_op, require_width
from ...fixed import MAX_EXACT_WIDTH

OP = "bdt"
SPLITTING_CONVENTIONS = ("<", "<=")
#: "balanced": conifer's HLS ``reduce``; "sequential": its C++ backend; "vhdl": its VHDL backend.
REDUCTIONS = ("balanced", "sequential", "vhdl")
VHDL = "vhdl"
#: The widest type conifer's VHDL testbench carries (VHDL integers) and int64 multiplies exactly.
MAX_VHDL_WIDTH = 32
#: Marks a leaf in ``feature`` (conifer's and sklearn's convention).
LEAF = -2


def holds_vhdl_type(t) -> bool:
    """Whether conifer's VHDL holds the type ``t``: signed, at most :data:`MAX_VHDL_WIDTH` bits,
    with 0 to W integer bits."""
    return t.signed and t.width <= MAX_VHDL_WIDTH and 0 <= t.integer <= t.width


def adder_tree_order(n: int) -> list:
    """conifer's ``reduce<T, n>`` as nested pairs of tree indices (for the record and the tests)."""
    def split(lo, count):
        if count == 1:
            return lo
        if count == 2:
            return [lo, lo + 1]
        left = _left_count(count)
        return [split(lo, left), split(lo + left, count - left)]
    return split(0, n)


def _left_count(n: int) -> int:
    """``pow2(floorlog2(n - 1))``: how many of ``n`` values the left half of ``reduce`` takes."""
    return 1 << ((n - 1).bit_length() - 1) if n > 2 else 1


@register_op
class Ensemble(Op):
    """All trees of a BDT: ``data_type`` is ``input_t``, ``result_type`` is ``score_t``.

    Arrays are ``(n_scores, n_rounds, n_nodes)`` (``n_scores``: 1 for two classes, else one per
    class; shorter trees padded with leaves); ``init_predict`` is ``(n_scores,)``, ``norm`` ``(1,)``.
    """

    ops = (OP,)
    fields = {
        "n_features": Field(INT), "n_classes": Field(INT), "n_rounds": Field(INT), "max_depth": Field(INT),
        "splitting_convention": Field(STR),
        "threshold_type": Field(TYPE), "weight_type": Field(TYPE), "score_type": Field(TYPE),
        "library": Field(STR, ""),
        #: How the tree scores of a class are summed: "balanced" (the HLS code's ``reduce``, then
        #: init_predict added), "sequential" (conifer's C++ backend: ``std::accumulate`` from
        #: init_predict, tree by tree; it differs from the HLS code once the score saturates) or
        #: "vhdl" (conifer's VHDL: wrap-around sums, the normalisation's slice; see the module docstring).
        "reduction": Field(STR, "balanced"),
    }
    arrays = {"feature": None, "children_left": None, "children_right": None,
              "threshold": "threshold_type", "value": "score_type",
              "init_predict": "score_type", "norm": "score_type"}

    @classmethod
    def price(cls, spec, arrays, cost):
        """Not priced layer by layer: a BDT's estimate is conifer's model (``fastml_lab.estimate.estimate``)."""
        raise UnsupportedError(f"Layer {spec['name']!r} has op {spec['op']!r}: a BDT ensemble is priced by "
                               "conifer's model (fastml_lab.estimate.estimate of the BDT), not layer by layer.")

    def __init__(self, spec, arrays):
        super().__init__(spec, arrays)
        if self.reduction not in REDUCTIONS:
            raise UnsupportedError(f"Layer {self.name!r}: unknown reduction {self.reduction!r}; "
                                   f"known: {', '.join(REDUCTIONS)}.")
        if self.splitting_convention not in SPLITTING_CONVENTIONS:
            raise UnsupportedError(f"Layer {self.name!r}: unknown splitting convention "
                                   f"{self.splitting_convention!r}; known: {', '.join(SPLITTING_CONVENTIONS)}.")
        self.n_scores, self.n_rounds_stored, self.n_nodes = self.feature.shape
        # Flat tables for the traversal: one row per tree, leaves point at themselves.
        n_trees = self.n_scores * self.n_rounds_stored
        feature = self.feature.reshape(n_trees, self.n_nodes).astype(np.int64)
        is_leaf = feature < 0
        own = np.broadcast_to(np.arange(self.n_nodes), feature.shape)
        offset = (np.arange(n_trees) * self.n_nodes)[:, None]
        self._feature = np.where(is_leaf, 0, feature).ravel()
        self._threshold = self.threshold.reshape(n_trees, self.n_nodes).ravel()
        self._left = (np.where(is_leaf, own, self.children_left.reshape(feature.shape)) + offset).ravel()
        self._right = (np.where(is_leaf, own, self.children_right.reshape(feature.shape)) + offset).ravel()
        self._value = self.value.reshape(n_trees, self.n_nodes).ravel()
        self._roots = offset.ravel()
        self._one = float(self.weight_type.quantize(np.ones(1))[0])
        self._less = np.less if self.splitting_convention == "<" else np.less_equal
        if self.reduction == VHDL:
            t = self.score_type
            if not holds_vhdl_type(t):
                raise UnsupportedError(
                    f"Layer {self.name!r}: conifer's VHDL holds signed types of at most {MAX_VHDL_WIDTH} bits "
                    f"with 0 to W integer bits; the score type is {t}.")
            self._value_raw = self.raw_arrays["value"].astype(np.int64).ravel()
            self._init_raw = self.raw_arrays["init_predict"].astype(np.int64)
            self._norm_raw = int(self.raw_arrays["norm"].ravel()[0])

    def check_exact(self, x_type):
        require_width(self.name, "score", self.score_type)
        require_width(self.name, "threshold", self.threshold_type)
        if self.reduction == VHDL:  # integer arithmetic, bounded in __init__
            return
        if 2 * self.score_type.width > MAX_EXACT_WIDTH:
            raise UnsupportedError(
                f"Layer {self.name!r}: the score type {self.score_type} is {self.score_type.width} bits; "
                f"the product score * norm must stay exact in float64 (at most {MAX_EXACT_WIDTH // 2} bits).")
        if x_type.width + self.weight_type.width > MAX_EXACT_WIDTH:
            raise UnsupportedError(f"Layer {self.name!r}: input times weight is too wide to emulate exactly.")

    # ------------------------------------------------------------------ running
    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Flat indices of the active leaf of every tree, ``(n, n_scores * n_rounds)``."""
        if self._one != 1.0:  # weight_t does not hold 1: the firmware compares input_t(x * weight)
            x = self.data_type.quantize(x * self._one)
        node = np.broadcast_to(self._roots, (x.shape[0], self._roots.size)).copy()
        for _ in range(self.max_depth):
            values = np.take_along_axis(x, self._feature[node], axis=1)
            node = np.where(self._less(values, self._threshold[node]), self._left[node], self._right[node])
        return node

    def tree_scores(self, x: np.ndarray) -> np.ndarray:
        """Every tree's score, ``(n, n_scores, n_rounds)``."""
        return self._value[self.leaves(x)].reshape(x.shape[0], self.n_scores, self.n_rounds_stored)

    def reduce(self, scores: np.ndarray) -> np.ndarray:
        """conifer's balanced adder tree over the last axis, each sum cast to ``score_t``."""
        t = self.score_type
        if t.overflow == "WRAP":  # values on the grid, sums exact, wrap-around is modular: any order
            return t.quantize(scores.sum(axis=-1))

        def reduce(lo, count):
            if count == 1:
                return scores[..., lo]
            if count == 2:
                return t.quantize(scores[..., lo] + scores[..., lo + 1])
            left = _left_count(count)
            return t.quantize(reduce(lo, left) + reduce(lo + left, count - left))

        return reduce(0, scores.shape[-1])

    def vhdl_scores(self, x: np.ndarray) -> tuple:
        """conifer's VHDL sum and normalisation (module docstring, 4'-5'), on the stored integers:
        ``(scores as float64 (n, n_scores), mask of the scores whose arithmetic wrapped around)``."""
        t = self.score_type

        def wrap(raw):  # to W bits, two's complement
            return (raw - t.raw_min) % (1 << t.width) + t.raw_min

        raw = self._value_raw[self.leaves(x)].reshape(x.shape[0], self.n_scores, self.n_rounds_stored)
        exact = raw.sum(axis=-1) + self._init_raw  # |sum| < 2**(W - 1) * (n_rounds + 1): no int64 overflow
        total = wrap(exact)
        wrapped = total != exact
        if self._norm_raw != 1:
            product = total * self._norm_raw  # |product| <= 2**(2W - 2) <= 2**62
            sliced = product >> t.fractional  # bits 2W-I-1 .. F: floor(product / 2**F), then wrapped
            total = wrap(sliced)
            wrapped |= total != sliced
        return t.from_raw(total), wrapped

    def cast(self, values):
        # The VHDL's values are final (on the grid and in range); its type's modes do not apply to it.
        return values if self.reduction == VHDL else super().cast(values)

    def counting(self, x):
        if self.reduction != VHDL:
            return super().counting(x)
        values, wrapped = self.vhdl_scores(x)
        return values, int(wrapped.sum())

    def compute(self, x):
        """``score * norm`` before its cast to ``score_t`` (for "vhdl": the VHDL's final scores)."""
        if self.reduction == VHDL:
            return self.vhdl_scores(x)[0]
        t, scores = self.score_type, self.tree_scores(x)
        if self.reduction == "sequential" and t.overflow != "WRAP":  # init_predict, then tree by tree
            total = np.broadcast_to(self.init_predict, scores.shape[:-1])
            for i in range(scores.shape[-1]):
                total = t.quantize(total + scores[..., i])
        else:
            total = t.quantize(self.init_predict + self.reduce(scores))
        return total * self.norm[0]
