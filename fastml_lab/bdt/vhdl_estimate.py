"""LUTs and flip-flops of conifer's VHDL BDT, counted from its structure and priced as yosys maps it.

conifer's VHDL (``Tree.vhd``, ``AddReduce.vhd``, ``BDT.vhd``; :mod:`fastml_lab.bdt.vhdl`) builds,
for each tree of the ensemble padded to the depth ``D`` of the deepest tree (conifer's ``padTree``:
a leaf shallower than ``D`` grows two children holding its score, again and again):

* per internal node, a comparator ``X(feature) < threshold`` (``<=`` for scikit-learn's trees) into
  a register, then a pipeline of that bit: a node of depth ``d`` is read ``d + 1`` stages later;
  a padding node "compares" ``true``, whose pipeline registers start at false;
* per node, an activation register: ``activation(child) = comparison(parent) [not] and
  activation(parent)``;
* a priority multiplexer over the ``2**D`` nodes of depth ``D`` (in index order: the first active
  one gives the tree's score, none gives 0) into a W-bit register;

then, per class, a pipelined adder tree over the tree scores and ``init_predict`` (pairs of W-bit
sums, a register each; an odd one out is added to 0) and the normalisation's register (unless its
stored integer is 1: a shift when it is a power of 2, else a multiplier).

What yosys makes of it (``synth_xilinx -flatten``, :mod:`fastml_lab.rtl.yosys`; checked cell by cell
on mapped designs), and so what :func:`vhdl_bdt_features` counts (numpy only, from the firmware's
description and arrays):

* identical logic is one: the same ``(feature, threshold)`` anywhere in the ensemble is one
  comparator and one pipeline (tapped at every depth that reads it); nodes reached by the same
  path of comparisons (across trees and classes) share one activation; identical score bits share
  one register. What nothing reads is gone: a score bit that is 0 at every leaf is a constant, the
  leaves after the last one that sets a bit of the score are never read (the multiplexer's default
  is 0), nor the activations and comparisons only they need; a tree that always scores 0 leaves the
  adder tree. The padding is not folded: its ``true`` starts false, so its activations are
  registers and ANDs like the others (and its "true" pipeline, one register per stage, is shared);
* three registers or more in a row, whose inner ones feed nothing else, become one shift register
  (``SRL16E``, a LUT) per bit: the comparison pipelines between their taps, and the delays of an
  adder tree's odd ones out (with the normalisation's register after them);
* a comparison with a constant (``cmp2lcu``): over 12 bits, chunks of 6 bits from the top, 2 LUTs
  each (equal, greater) shared by every comparison of that feature whose bound has the same bits
  there, joined by a carry chain (a CARRY4); up to 12 bits, LUTs only: a chain of 6-input LUTs
  over the ``w`` bits the bound's trailing zeros leave (``ceil((w - 1) / 5)``);
* an activation of depth >= 2 is an AND (a LUT); a right child of the root, an inverter (a LUT);
* a score bit read from the first ``s`` leaves: a priority chain of LUTs taking four leaves more
  each (``ceil((s - 1) / 4)``);
* an adder: a LUT per distinct pair of operand bits (a score's sign extension is one register),
  from the lowest bit that is not 0 in both, and a carry chain up to one bit above both operands'
  sign extensions (yosys drops the carry cells beyond, whose outputs only repeat the sign); its
  register keeps the bits that can be 1 (the sum of two scores that are never negative is one bit
  wider than the wider one).

Registers, shift registers, carry cells, ANDs and adder bits come out exact or within a few percent
of the mapping (the adder tree least well: it folds constants that yosys keeps as registers starting
at 0, and the shift registers yosys then builds from the sums passed on unchanged are not always
the ones counted: the largest FF errors seen, up to +15% on a small 3-class design, are there);
the comparisons' and multiplexers' LUTs are ideal counts that ABC's mapping beats by sharing or
misses by optimising for delay. A coefficient per figure or part of it, fitted to
yosys' mappings of random designs (:data:`LUT_COEF`, :data:`FF_COEF`, :data:`CARRY4_COEF`: see
``bench/fit_vhdl_bdt_cost.py``), turns the counts into LUT, FF and CARRY4;
``bench/bench_rtl_estimate.py`` measures the estimate on designs the fit never saw. The figures
are those of a technology mapping to 7-series cells, before place and route.

Numpy only."""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..exceptions import UnsupportedError
from ..firmware.ops.bdt import OP, VHDL

__all__ = ["VHDL_STRUCTURE_ESTIMATE", "LUT_COEF", "FF_COEF", "CARRY4_COEF", "LUT_TERMS", "FF_TERMS", "CARRY4_TERMS",
           "vhdl_bdt_features", "vhdl_bdt_resources", "padded_tree", "reduce_stages"]

#: The kind of the figures (the estimate's ``kind``).
VHDL_STRUCTURE_ESTIMATE = "conifer VHDL structure estimate"

#: A chain of this many registers (or more) becomes a shift register (yosys: ``xilinx_srl -minlen 3``).
SRL_MIN_LENGTH = 3
#: The deepest shift register of one LUT (``SRLC32E``).
SRL_MAX_LENGTH = 32
#: What a padding node "compares": conifer's ``comparison(i) <= true``.
PAD = "pad"
#: Inputs of a LUT of the 7-series.
LUT_INPUTS = 6

# The fitted coefficients: bench/fit_vhdl_bdt_cost.py, 2026-12-07, on 30 random xgboost designs
# (seeds 1000-1029: depth 2-6, 5-60 rounds, 2-3 classes, W 8-18; 496-20,202 FF, 521-33,277 LUT),
# mapped by yosys 0.23 (synth_xilinx -family xc7 -abc9 -flatten). Calibration error (estimate /
# mapping - 1): LUT median -0.1%, median |error| 3.0%, worst +5.7%; FF median +0.0%, median |error|
# 0.2%, worst -2.9%; CARRY4 median |error| 0.1%, worst +2.6%. Leave one out: LUT median |error|
# 3.2%, worst +7.0%; FF 0.2%, worst -2.9%.
#: LUTs per ideal LUT of the comparisons (LUTs only, up to 12 bits; chunks on a carry chain, wider)
#: and of the multiplexers: the parts ABC maps its own way. The shift registers, the activations'
#: ANDs and the adders' bits count one LUT each, exactly.
LUT_COEF = {"compare_logic_luts": 0.958, "compare_carry_luts": 1.131, "mux_luts": 0.955}
#: Flip-flops per register bit counted (every register yosys keeps: 1 if the count is right).
FF_COEF = {"register_ff": 0.999}
#: CARRY4 per carry cell counted (the comparisons' and the adders' chains).
CARRY4_COEF = {"carry4": 0.998}

#: Each figure: the features counted with coefficient 1 and those whose coefficient is fitted
#: (``bench/fit_vhdl_bdt_cost.py`` fits the latter).
LUT_TERMS = {"exact": ("srl", "activation_luts", "adder_luts", "control_luts"), "fitted": tuple(LUT_COEF)}
FF_TERMS = {"exact": (), "fitted": tuple(FF_COEF)}
CARRY4_TERMS = {"exact": (), "fitted": tuple(CARRY4_COEF)}
#: The registers :data:`FF_COEF` prices.
REGISTERS = ("compare_ff", "activation_ff", "score_ff", "adder_ff", "output_ff", "control_ff")


# ------------------------------------------------------------------ the trees as conifer pads them
def padded_tree(left, right, depth: int) -> tuple:
    """One tree as conifer's ``padTree`` pads it to ``depth``: ``(left, right, origin, leaves)``
    in conifer's numbering (the exported nodes first, then the padding in the order it is added),
    ``origin``: the exported node each node stands for (a padding node, the leaf it grew from: it
    holds that leaf's score), ``leaves``: the nodes of depth ``depth`` in index order (the order the
    multiplexer tries them).

    ``padTree`` gives every leaf shallower than ``depth`` two children, pass after pass (appending
    them in index order), until the tree is full. ``left``/``right``: the exported tree's children
    (-1 at a leaf), its nodes reachable from node 0.
    """
    left = [int(c) for c in left]
    right = [int(c) for c in right]
    level, reach = {0: 0}, [0]
    for node in reach:
        for child in (left[node], right[node]):
            if child >= 0:
                level[child] = level[node] + 1
                reach.append(child)
    n = max(reach) + 1
    kids_left = [left[i] if i in level else -1 for i in range(n)]
    kids_right = [right[i] if i in level else -1 for i in range(n)]
    levels = [level.get(i, depth) for i in range(n)]
    origin = list(range(n))
    full = 2 ** (depth + 1) - 1
    while len(kids_left) < full:
        grown = len(kids_left)
        for i in range(grown):
            if kids_left[i] == -1 and levels[i] < depth:
                kids_left.extend([-1, -1])
                kids_right.extend([-1, -1])
                levels.extend([levels[i] + 1] * 2)
                origin.extend([origin[i]] * 2)
                kids_left[i], kids_right[i] = len(kids_left) - 2, len(kids_left) - 1
        if len(kids_left) == grown:
            break
    leaves = [i for i in range(len(levels)) if levels[i] == depth and (i in level or i >= n)]
    return kids_left, kids_right, origin, leaves


def _trailing_zeros(value: int, width: int) -> int:
    value &= (1 << width) - 1
    return width if value == 0 else (value & -value).bit_length() - 1


def _chain(length: int) -> tuple:
    """``(flip-flops, shift registers)`` of a register chain whose inner stages feed nothing else."""
    if length >= SRL_MIN_LENGTH:
        return 0, math.ceil(length / SRL_MAX_LENGTH)
    return length, 0


def _lut_chain(inputs: int) -> int:
    """6-input LUTs of a function of ``inputs`` bits that decomposes into a chain, five bits more
    each (a comparison with a constant): none for one input."""
    return 0 if inputs <= 1 else math.ceil((inputs - 1) / (LUT_INPUTS - 1))


def _compare_chunks(feature: int, bound: int, width: int) -> list:
    """A comparison ``x < bound`` (a W-bit signed constant) as yosys' ``cmp2lcu`` cuts it: chunks
    of 6 bits from the top, each ``(feature, its top bit, its width, the bound's bits there)``."""
    chunks, top = [], width - 1
    while top >= 0:
        size = min(LUT_INPUTS, top + 1)
        chunks.append((feature, top, size, (bound >> (top - size + 1)) & ((1 << size) - 1)))
        top -= size
    return chunks


class _Operand:
    """An input of the adder tree, bit by bit: ``0``/``1`` (a constant's bits), ``None`` (a bit
    that is always 0) or what drives the bit (a tree's score: its column, so the bits of the
    sign's extension are one register; a sum: a register of its own). ``stages``: the registers
    in a row that hold it without logic between them (1: the register its logic feeds; one more
    for each stage that adds 0 to it), ``kind``: what feeds the first ("score" or "sum")."""

    __slots__ = ("bits", "constant", "stages", "kind")
    _fresh = itertools.count()

    def __init__(self, bits, constant: bool = False, stages: int = 1, kind: str = "sum"):
        self.bits, self.constant, self.stages, self.kind = list(bits), constant, stages, kind

    @classmethod
    def of_constant(cls, value: int, width: int):
        return cls([(value >> b) & 1 for b in range(width)], constant=True, stages=0)

    @property
    def value(self) -> int:
        return sum(bit << b for b, bit in enumerate(self.bits))

    def varying(self) -> int:
        """How many registers hold one stage of it (its distinct bits that are not constant)."""
        return len({bit for bit in self.bits if bit is not None and not isinstance(bit, int)})

    def span(self) -> tuple:
        """``(low, high)``: the lowest and highest bits that are not always 0 (``high`` is the top
        bit unless the operand is never negative)."""
        ones = [b for b, bit in enumerate(self.bits) if bit not in (None, 0)]
        return (ones[0], ones[-1]) if ones else (len(self.bits), -1)

    def delays(self, extra: int = 0) -> dict:
        """What its row of registers (plus ``extra`` more at its end) costs beyond the first
        register: more flip-flops, or, three registers or more in a row, one shift register per
        bit, which takes the first register's flip-flops too (``absorbed``, of ``kind``)."""
        length, bits = self.stages + extra, self.varying()
        if self.constant or length <= 1:
            return {"ff": 0, "srl": 0, "absorbed": 0}
        if length >= SRL_MIN_LENGTH:
            return {"ff": 0, "srl": bits * math.ceil(length / SRL_MAX_LENGTH), "absorbed": bits}
        return {"ff": bits * (length - 1), "srl": 0, "absorbed": 0}

    @staticmethod
    def add(a, b, width: int) -> tuple:
        """``(sum, costs)``: the registered sum and what it costs: ``adder`` (1 when both operands
        vary, or one is a constant other than 0; one that adds 0 only delays the other), ``luts``
        (one per distinct pair of operand bits, between the lowest bit not 0 in both and the sum's
        top bit that is not always 0), ``carry4`` (a chain from there to one bit above the operands'
        sign extensions: yosys drops the carry cells whose outputs only repeat the sign), ``ff``
        (the sum's register: the bits that can be 1; a sum of operands that are never negative is
        one bit wider than the wider of them, its bits above are 0) and the operands' delays
        (:meth:`delays`), which end here."""
        if a.constant and b.constant:
            return _Operand.of_constant((a.value + b.value) & ((1 << width) - 1), width), []
        if (a.constant and a.value == 0) or (b.constant and b.value == 0):
            kept = b if a.constant else a
            return _Operand(kept.bits, stages=kept.stages + 1, kind=kept.kind), []
        (low_a, high_a), (low_b, high_b) = a.span(), b.span()
        low = min(low_a, low_b)
        top = width - 1
        if a.bits[top] in (None, 0) and b.bits[top] in (None, 0):  # never negative
            top = min(width - 1, max(high_a, high_b) + 1)
        pairs = {(a.bits[i], b.bits[i]) for i in range(low, top + 1)}
        luts = sum(1 for x, y in pairs if not (x in (None, 0, 1) and y in (None, 0, 1)))
        chain = min(top, max(_sign_run(a.bits), _sign_run(b.bits)) + 1) - low + 1
        bits = [("sum", next(_Operand._fresh)) if low <= i <= top else None for i in range(width)]
        costs = [{"adder": 1, "luts": luts, "ff": top - low + 1, "carry4": math.ceil(max(chain, 1) / 4)}]
        costs += [{**x.delays(), "kind": x.kind} for x in (a, b) if not x.constant]
        return _Operand(bits), costs


def _sign_run(bits) -> int:
    """The lowest bit from which every bit up to the top is the top bit (the same register or value)."""
    top = len(bits) - 1
    while top > 0 and bits[top - 1] == bits[-1]:
        top -= 1
    return top


def _mux_luts(inputs: int) -> int:
    """LUTs of one score bit's priority multiplexer over ``inputs`` leaves (the first active
    one's bit, else 0): a chain of 6-input LUTs, each taking four more leaves' activations with
    the bit so far and whether a leaf before was active (that signal is the tree's, shared by
    its bits); one leaf is its activation itself."""
    return 0 if inputs <= 1 else math.ceil((inputs - 1) / (LUT_INPUTS - 2))


def reduce_stages(n: int) -> int:
    """Register stages of conifer's ``AddReduce`` over ``n`` values: none for one value, one for
    two, else one for the pairs and those of the ``ceil(n / 2)`` sums (``ceil(log2(n))``)."""
    return 0 if n <= 1 else 1 if n == 2 else 1 + reduce_stages((n + 1) // 2)


def _bdt_layer(description: dict) -> dict:
    layers = [spec for spec in description.get("layers", ()) if spec.get("op") == OP]
    if len(layers) != 1 or layers[0].get("reduction") != VHDL:
        raise UnsupportedError("The VHDL structure estimate prices one 'bdt' op with reduction 'vhdl' "
                               "(a project exported with --backend vhdl).")
    return layers[0]


# ------------------------------------------------------------------ the features
def vhdl_bdt_features(description: dict, arrays: dict) -> dict:
    """The structure of conifer's VHDL for the ensemble of a firmware description (one ``"bdt"`` op,
    reduction ``"vhdl"``) and its arrays (stored integers), as yosys keeps it (module docstring).

    Returns the shape (``W``, ``depth``, ``n_scores``, ``n_rounds``; per tree, over all trees:
    ``internal_nodes``, ``leaves``, ``padded_nodes``), what is shared (``comparisons``: distinct
    (feature, threshold) pairs used; ``activations``), and the counts the estimate prices:
    ``compare_logic_luts`` / ``compare_carry_luts`` (their sum ``compare_luts``), ``mux_luts``
    (ideal LUTs), ``activation_luts``, ``adder_luts``, ``srl`` (shift registers), ``control_luts``,
    ``compare_ff``, ``activation_ff``, ``score_ff``, ``adder_ff``, ``output_ff``, ``control_ff``
    (their sum ``register_ff``), ``compare_carry4`` + ``adder_carry4`` = ``carry4``, ``dsp``; and
    ``adders``, ``mux_inputs`` (leaves read by the multiplexers, over their score bits).
    """
    spec = _bdt_layer(description)
    name = spec["name"]

    def table(key):
        return np.asarray(arrays[f"{name}/{key}"])

    feature, left, right = table("feature"), table("children_left"), table("children_right")
    threshold, value = table("threshold").astype(np.int64), table("value").astype(np.int64)
    init_predict, norm = table("init_predict").astype(np.int64), table("norm").astype(np.int64)
    width = int(spec["data_type"]["width"])
    depth = int(spec["max_depth"])
    mask = (1 << width) - 1
    less_equal = spec.get("splitting_convention") == "<="
    n_scores, n_rounds, n_nodes = feature.shape

    taps = {}          # (feature, threshold) -> the pipeline stages read
    pad_stages = set()  # the stages of the padding's "true" that activations read
    activations = set()  # paths of (comparison or PAD, went left) from the root
    columns = set()    # (leaf paths read, bits read): one score register each
    scores = {}        # (class, round) -> the score's bits (a column or None: constant 0), or None
    mux_luts = mux_inputs = internal = leaves = 0
    for k in range(n_scores):
        for t in range(n_rounds):
            lt, ft, tt = left[k, t], feature[k, t], threshold[k, t]
            kids_left, kids_right, origin, order = padded_tree(lt, right[k, t], depth)
            paths = {0: ()}
            for node in range(len(kids_left)):  # parents come before their children
                if kids_left[node] >= 0:
                    real = node < len(lt) and origin[node] == node and lt[node] >= 0
                    key = (int(ft[node]), int(tt[node])) if real else PAD
                    internal += int(real)
                    leaves += int(not real and (node == 0 or paths[node][-1][0] != PAD))
                    paths[kids_left[node]] = paths[node] + ((key, True),)
                    paths[kids_right[node]] = paths[node] + ((key, False),)
            if len(kids_left) == 1:
                leaves += 1
            else:
                leaves += sum(1 for leaf in order if paths[leaf][-1][0] != PAD)
            values = [int(value[k, t, origin[leaf]]) & mask for leaf in order]
            # the score's bits: each reads the leaves up to the last one that sets it
            reads, bits = 0, []
            for b in range(width):
                column = tuple((v >> b) & 1 for v in values)
                if not any(column):
                    bits.append(None)
                    continue
                last = max(i for i, x in enumerate(column) if x) + 1
                reads = max(reads, last)
                entry = (tuple(paths[leaf] for leaf in order[:last]), column[:last])
                bits.append(entry)
                if entry not in columns:
                    columns.add(entry)
                    mux_luts += _mux_luts(last)
                    mux_inputs += last - 1
            scores[k, t] = bits if reads else None
            # what those leaves need: their activations, their ancestors' and the comparisons
            for leaf in order[:reads]:
                path = paths[leaf]
                for d in range(1, len(path) + 1):
                    activations.add(path[:d])
                    key = path[d - 1][0]
                    if key == PAD:
                        pad_stages.add(d)
                    else:
                        taps.setdefault(key, set()).add(d)
    # the comparisons: their logic and their pipelines, cut into chains at every tap
    compare_logic_luts = compare_ff = compare_carry4 = srl = 0
    chunk_luts = {}  # (feature, the chunk's place, width and constant bits) -> its LUTs (carry chains)
    for (f, c), stages in taps.items():
        bound = (c + 1 if less_equal else c) & mask
        bits_read = width - _trailing_zeros(bound, width)
        chunks = _compare_chunks(f, bound, width)
        if len(chunks) > 2:  # cmp2lcu: each chunk's "equal" and "greater" into a carry chain
            compare_carry4 += math.ceil(len(chunks) / 4)
            for chunk in chunks:
                chunk_luts[chunk] = 2 if chunk[2] > 1 else 1
        else:  # LUTs only: a chain over the bits the bound's trailing zeros leave
            compare_logic_luts += _lut_chain(bits_read)
        start = 0
        for tap in sorted(stages):
            ff, shift = _chain(tap - start + 1)
            compare_ff += ff
            srl += shift
            start = tap + 1
    compare_carry_luts = sum(chunk_luts.values())
    # the activations: a register each, after an AND (depth >= 2) or an inverter (a right child of the root)
    activation_luts = sum(1 for path in activations if len(path) >= 2 or not path[-1][1])
    activation_ff = len(activations)
    # the adder trees: registered W-bit sums of the trees' scores and init_predict, constants folded
    # (yosys keeps a registered constant, which starts at 0: a register or two the count misses);
    # then the normalisation's register (a shift of the sum unless the stored integer is not a power of 2)
    stored_norm = int(norm[0]) if norm.size else 1
    scaled = stored_norm != 1
    shift = scaled and stored_norm > 0 and stored_norm & (stored_norm - 1) == 0
    # minus a power of 2: a shift and a negation (a subtraction from 0); any other: a DSP48E1 multiplier
    negate = scaled and stored_norm < 0 and -stored_norm & (-stored_norm - 1) == 0
    multiply = scaled and not shift and not negate
    adders = adder_luts = adder_ff = adder_carry4 = output_ff = 0
    score_ff = len(columns)
    for k in range(n_scores):
        items = [_Operand(scores[k, t], kind="score") if scores[k, t] is not None else _Operand.of_constant(0, width)
                 for t in range(n_rounds)]
        items.append(_Operand.of_constant(int(init_predict[k]) & mask, width))
        costs = []
        while len(items) > 1:
            if len(items) % 2:
                items.append(_Operand.of_constant(0, width))
            merged = []
            for a, b in zip(items[::2], items[1::2]):
                total, cost = _Operand.add(a, b, width)
                merged.append(total)
                costs += cost
            items = merged
        final = items[0]
        if not final.constant:
            delays = final.delays(1 if shift else 0)
            if shift:  # the normalisation's register is the last of the row (a shift register's)
                if not delays["srl"]:
                    delays["ff"] -= final.varying()
                    output_ff += final.varying()
            elif scaled:  # the negation's or the multiplier's register
                output_ff += width
                if negate:
                    costs.append({"adder": 1, "luts": width, "carry4": math.ceil(width / 4)})
            costs.append({**delays, "kind": final.kind})
        for cost in costs:
            adders += cost.get("adder", 0)
            adder_luts += cost.get("luts", 0)
            adder_carry4 += cost.get("carry4", 0)
            adder_ff += cost.get("ff", 0)
            srl += cost.get("srl", 0)
            if cost.get("kind") == "score":
                score_ff -= cost["absorbed"]
            else:
                adder_ff -= cost.get("absorbed", 0)
    stages = reduce_stages(n_rounds + 1)
    # the valid signals: one delay line shared by every tree and class, tapped by the adder tree's stages
    control_ff = stages + 1 + int(scaled) + max(pad_stages, default=0)
    features = {
        "W": width, "depth": depth, "n_scores": n_scores, "n_rounds": n_rounds, "n_trees": n_scores * n_rounds,
        "internal_nodes": internal, "leaves": leaves,
        "padded_nodes": n_scores * n_rounds * (2 ** (depth + 1) - 1) - internal - leaves,
        "comparisons": len(taps), "activations": len(activations),
        "constant_trees": sum(1 for bits in scores.values() if bits is None),
        "compare_luts": compare_logic_luts + compare_carry_luts, "compare_logic_luts": compare_logic_luts,
        "compare_carry_luts": compare_carry_luts, "activation_luts": activation_luts, "mux_luts": mux_luts,
        "mux_inputs": mux_inputs,
        "adders": adders, "adder_luts": adder_luts, "compare_carry4": compare_carry4, "adder_carry4": adder_carry4,
        "carry4": compare_carry4 + adder_carry4,
        "srl": srl, "compare_ff": compare_ff, "activation_ff": activation_ff, "score_ff": score_ff,
        "adder_ff": adder_ff, "output_ff": output_ff,
        "control_ff": control_ff, "control_luts": 1,
        "dsp": n_scores if multiply else 0,
    }
    features["register_ff"] = sum(features[k] for k in REGISTERS)
    return features


def vhdl_bdt_resources(description: dict, arrays: dict, coefficients: dict | None = None) -> dict:
    """``{"LUT", "FF", "CARRY4", "DSP", "BRAM_18K", "features"}`` of conifer's VHDL for the
    ensemble: :func:`vhdl_bdt_features` priced by the fitted coefficients (``coefficients``:
    ``{"LUT": {...}, "FF": {...}, "CARRY4": {...}}`` in place of the module's, to try others)."""
    features = vhdl_bdt_features(description, arrays)
    coefficients = coefficients or {}
    found = {}
    for name, terms, coef in (("LUT", LUT_TERMS, LUT_COEF), ("FF", FF_TERMS, FF_COEF),
                              ("CARRY4", CARRY4_TERMS, CARRY4_COEF)):
        coef = {**coef, **coefficients.get(name, {})}
        found[name] = int(round(sum(features[k] for k in terms["exact"])
                                + sum(coef[k] * features[k] for k in terms["fitted"])))
    return {**found, "DSP": int(features["dsp"]), "BRAM_18K": 0, "features": features}
