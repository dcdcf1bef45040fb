"""Pattern recognition of the ONNX front end: the decomposed forms that opset-13 exports write,
found and fused back to the standard op, or annotated where ONNX has no op for them.

Each pattern is a named qonnx ``Transformation`` that keeps the graph executable;
:func:`recognise` applies :data:`PATTERNS` in order. Every recognised pattern is recorded in
the model's metadata property :data:`PATTERNS_KEY`, a JSON list of ``{"pattern": name,
"nodes": [node names]}`` (for a fusion, ``nodes`` is the one fused node and ``"from"`` lists the
nodes it replaced); :func:`patterns` reads it. The table of forms is in
:mod:`hwsim.compile.frontend` and docs/compile.md. Imports nothing from the front end.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

__all__ = ["PATTERNS", "PATTERNS_KEY", "FuseGeluErf", "FuseLayerNorm", "FuseRMSNorm", "FuseRotary",
           "MarkAbsmaxQuant", "MarkAttention", "MarkKvRepeat", "MarkLif", "MarkReluSquared",
           "constant", "fresh_name", "is_square", "pattern_owners", "patterns", "quiet",
           "recognise"]

#: metadata property holding the recognised patterns (JSON)
PATTERNS_KEY = "hwsim.patterns"


def quiet(fn, *args):
    """``fn(*args)`` with qonnx's broadcast-shape warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)

# --- graph helpers ---------------------------------------------------------------------------

def constant(model, name: str) -> np.ndarray | None:
    return model.get_initializer(name) if name else None


def _is_scalar(model, name: str, value: float, rel: float = 1e-5) -> bool:
    """Whether tensor ``name`` is a constant whose every element is ``value`` (to ``rel``)."""
    c = constant(model, name)
    return c is not None and c.size >= 1 and bool(np.allclose(c, value, rtol=rel, atol=0))


def _other(node, name: str) -> str:
    """The input of a two-input ``node`` that is not ``name``."""
    return node.input[1] if node.input[0] == name else node.input[0]


def _sole_consumer(model, name: str, op_type: str):
    """The one consumer of ``name`` if it has that op type and ``name`` is no graph output."""
    users = model.find_consumers(name)
    if len(users) != 1 or users[0].op_type != op_type:
        return None
    if any(o.name == name for o in model.graph.output):
        return None
    return users[0]


def _producer(model, name: str, op_type: str):
    node = model.find_producer(name)
    return node if node is not None and node.op_type == op_type else None


def _last_axis(model, node, x: str) -> bool:
    """Whether a ``ReduceMean`` reduces exactly the last axis of ``x`` and keeps dims."""
    axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
    if axes is None and len(node.input) > 1:
        c = constant(model, node.input[1])
        axes = None if c is None else [int(v) for v in np.ravel(c)]
    keep = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
    shape = model.get_tensor_shape(x)
    if axes is None or len(axes) != 1 or not keep or shape is None:
        return False
    return axes[0] in (-1, len(shape) - 1)


def _internal(model, nodes: list, out: str) -> bool:
    """Whether every tensor made by ``nodes`` other than ``out`` is used only inside them."""
    inside = {id(n) for n in nodes}
    graph_out = {o.name for o in model.graph.output}
    for n in nodes:
        for t in n.output:
            if t == out:
                continue
            if t in graph_out or any(id(c) not in inside for c in model.find_consumers(t)):
                return False
    return True


def fresh_name(model, op_type: str, names: set[str] | None = None) -> str:
    """``<op_type>_<i>`` with the smallest ``i`` not among ``names`` (default: the graph's)."""
    names = {n.name for n in model.graph.node} if names is None else names
    i = 0
    while f"{op_type}_{i}" in names:
        i += 1
    return f"{op_type}_{i}"


def patterns(model) -> list[dict]:
    """The patterns recorded on ``model`` (:data:`PATTERNS_KEY`), oldest first."""
    raw = model.get_metadata_prop(PATTERNS_KEY)
    return json.loads(raw) if raw else []


def _record(model, entry: dict) -> None:
    model.set_metadata_prop(PATTERNS_KEY, json.dumps([*patterns(model), entry]))


def _replace(model, nodes: list, new, pattern: str) -> None:
    """Put ``new`` where the last of ``nodes`` was, remove ``nodes``, record the fusion."""
    graph = model.graph
    pos = max(model.get_node_index(n) for n in nodes)
    graph.node.insert(pos + 1, new)
    _record(model, {"pattern": pattern, "nodes": [new.name], "from": [n.name for n in nodes]})
    for n in nodes:
        graph.node.remove(n)


# --- fusions ---------------------------------------------------------------------------------

class FuseGeluErf(Transformation):
    """``x * 0.5 * (1 + Erf(x / √2))`` (``x / √2`` may be ``x * (1/√2)``; the three factors in
    any order, as torch exports ``nn.GELU`` below opset 20) → ``Gelu(x)``."""

    def _match(self, model, erf):
        pre = model.find_producer(erf.input[0])
        if pre is None or len(model.find_consumers(erf.input[0])) != 1:
            return None
        r2 = 1 / math.sqrt(2.0)
        if ((pre.op_type == "Div" and _is_scalar(model, pre.input[1], math.sqrt(2.0)))
                or (pre.op_type == "Mul" and _is_scalar(model, pre.input[1], r2))):
            x = pre.input[0]
        elif pre.op_type == "Mul" and _is_scalar(model, pre.input[0], r2):
            x = pre.input[1]
        else:
            return None
        add = _sole_consumer(model, erf.output[0], "Add")
        if add is None or not _is_scalar(model, _other(add, erf.output[0]), 1.0):
            return None
        nodes, factors, cur = [pre, erf, add], [], add.output[0]
        for _ in range(2):  # (x * 0.5) * a, x * (0.5 * a), (a * x) * 0.5, …
            mul = _sole_consumer(model, cur, "Mul")
            if mul is None:
                return None
            other = _other(mul, cur)
            inner = _producer(model, other, "Mul")
            nodes.append(mul)
            if other != x and inner is not None and _sole_consumer(model, other, "Mul") is mul:
                nodes.append(inner)
                factors.extend(inner.input)
            else:
                factors.append(other)
            cur = mul.output[0]
            if len(factors) == 2:
                break
        if len(factors) != 2 or x not in factors:
            return None
        half = factors[1] if factors[0] == x else factors[0]
        if not _is_scalar(model, half, 0.5) or not _internal(model, nodes, cur):
            return None
        return x, nodes, cur

    def apply(self, model):
        for erf in model.get_nodes_by_op_type("Erf"):
            found = self._match(model, erf)
            if found is not None:
                x, nodes, out = found
                new = helper.make_node("Gelu", [x], [out], name=fresh_name(model, "Gelu"),
                                       approximate="none")
                _replace(model, nodes, new, "gelu_erf")
                return model, True
        return model, False


def _norm_core(model, sqrt):
    """Match ``ReduceMean(sq) + eps → Sqrt → Div(d, ·)`` (or ``Reciprocal`` / ``Div(1, ·)``
    then ``Mul(d, ·)``, how ``torch.rsqrt`` exports) around ``sqrt``, where ``sq`` is
    ``Pow(d, 2)`` or ``Mul(d, d)``: ``(d, eps, nodes, out)`` with ``out`` the normalised
    tensor, or ``None``."""
    add = _producer(model, sqrt.input[0], "Add")
    if add is None:
        return None
    mean = model.find_producer(add.input[0]) or model.find_producer(add.input[1])
    if mean is None or mean.op_type != "ReduceMean":
        return None
    eps = constant(model, _other(add, mean.output[0]))
    if eps is None or eps.size != 1:
        return None
    sq = model.find_producer(mean.input[0])
    if sq is None:
        return None
    if not ((sq.op_type == "Pow" and _is_scalar(model, sq.input[1], 2.0))
            or (sq.op_type == "Mul" and sq.input[0] == sq.input[1])):
        return None
    d = sq.input[0]
    if not _last_axis(model, mean, d):
        return None
    nodes = [sq, mean, add, sqrt]
    users = model.find_consumers(sqrt.output[0])
    if len(users) != 1:
        return None
    user = users[0]
    if user.op_type == "Div" and user.input == [d, sqrt.output[0]]:
        nodes.append(user)
    elif user.op_type == "Reciprocal" or (user.op_type == "Div" and user.input[1] == sqrt.output[0]
                                          and _is_scalar(model, user.input[0], 1.0)):
        mul = _sole_consumer(model, user.output[0], "Mul")
        if mul is None or _other(mul, user.output[0]) != d:
            return None
        nodes += [user, mul]
    else:
        return None
    return d, float(eps.ravel()[0]), nodes, nodes[-1].output[0]


def _affine(model, out: str, nodes: list, width: int, with_bias: bool):
    """Optional ``Mul(out, gamma)`` then (``with_bias``) ``Add(·, beta)`` with constant
    per-channel ``gamma``/``beta`` of ``width`` elements: ``(gamma, beta, out)``."""
    gamma, beta = np.ones(width, np.float32), np.zeros(width, np.float32)
    for op, is_bias in (("Mul", False), ("Add", True)):
        if is_bias and not with_bias:
            break
        node = _sole_consumer(model, out, op)
        c = None if node is None else constant(model, _other(node, out))
        if c is None or c.size not in (1, width) or (c.ndim > 1 and c.shape[-1] != c.size):
            break
        vec = np.broadcast_to(np.ravel(c), (width,)).astype(np.float32)
        if is_bias:
            beta = vec
        else:
            gamma = vec
        nodes.append(node)
        out = node.output[0]
    return gamma, beta, out


def _add_params(model, node_name: str, arrays: Iterable[np.ndarray]) -> list[str]:
    """Add each array as a float32 initializer ``<node_name>_param<k>``; their names."""
    names = []
    for k, arr in enumerate(arrays):
        name = f"{node_name}_param{k}"
        model.set_initializer(name, np.ascontiguousarray(arr, np.float32))
        names.append(name)
    return names


class FuseLayerNorm(Transformation):
    """``d = x - ReduceMean(x)``; ``d / Sqrt(ReduceMean(d²) + eps) [* gamma] [+ beta]`` over
    the last axis (how torch exports ``nn.LayerNorm`` below opset 17) →
    ``LayerNormalization(x, gamma, beta, axis=-1, epsilon=eps)``."""

    def apply(self, model):
        for sqrt in model.get_nodes_by_op_type("Sqrt"):
            core = _norm_core(model, sqrt)
            if core is None:
                continue
            d, eps, nodes, out = core
            sub = _producer(model, d, "Sub")
            mean = sub and _producer(model, sub.input[1], "ReduceMean")
            if mean is None or mean.input[0] != sub.input[0] or not _last_axis(model, mean, d):
                continue
            x = sub.input[0]
            nodes = [mean, sub, *nodes]
            width = model.get_tensor_shape(x)[-1]
            gamma, beta, out = _affine(model, out, nodes, width, with_bias=True)
            if not _internal(model, nodes, out):
                continue
            name = fresh_name(model, "LayerNormalization")
            g, b = _add_params(model, name, (gamma, beta))
            new = helper.make_node("LayerNormalization", [x, g, b], [out], axis=-1,
                                   epsilon=eps, name=name)
            _replace(model, nodes, new, "layernorm")
            return model, True
        return model, False


class FuseRMSNorm(Transformation):
    """``x / Sqrt(ReduceMean(x²) + eps) [* gamma]`` over the last axis (``x²`` as ``Pow`` or
    ``Mul``; ``/ Sqrt`` or ``* Reciprocal(Sqrt)``) → ``RMSNormalization(x, gamma, axis=-1,
    epsilon=eps)`` (opset 23). Run after :class:`FuseLayerNorm`, whose core it shares."""

    def apply(self, model):
        for sqrt in model.get_nodes_by_op_type("Sqrt"):
            core = _norm_core(model, sqrt)
            if core is None:
                continue
            x, eps, nodes, out = core
            width = model.get_tensor_shape(x)[-1]
            gamma, _, out = _affine(model, out, nodes, width, with_bias=False)
            if not _internal(model, nodes, out):
                continue
            name = fresh_name(model, "RMSNormalization")
            (g,) = _add_params(model, name, (gamma,))
            new = helper.make_node("RMSNormalization", [x, g], [out], axis=-1, epsilon=eps,
                                   name=name)
            _replace(model, nodes, new, "rmsnorm")
            return model, True
        return model, False


def _last_axis_attr(node, rank: int) -> bool:
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    return axis in (-1, rank - 1)


def _halves(model, x1: str, x2: str, width: int) -> str | None:
    """The tensor whose first and second halves along the last axis ``x1`` and ``x2`` are
    (two ``Slice`` nodes or one two-way ``Split``), or ``None``."""
    p1, p2 = model.find_producer(x1), model.find_producer(x2)
    if p1 is None or p2 is None:
        return None
    rank = len(model.get_tensor_shape(x1))
    if p1 is p2 and p1.op_type == "Split" and list(p1.output) == [x1, x2]:
        split = constant(model, p1.input[1]) if len(p1.input) > 1 else None
        even = split is None or [int(v) for v in split] == [width // 2] * 2
        return p1.input[0] if even and _last_axis_attr(p1, rank) else None
    if p1.op_type != "Slice" or p2.op_type != "Slice" or p1.input[0] != p2.input[0]:
        return None
    for node, lo, hi in ((p1, 0, width // 2), (p2, width // 2, width)):
        starts, ends, axes, *steps = [constant(model, i) for i in node.input[1:]] + [None, None]
        if starts is None or ends is None or (steps[0] is not None and steps[0].ravel()[0] != 1):
            return None
        axis = -1 if axes is None or axes.size != 1 else int(axes.ravel()[0])
        if (axis not in (-1, rank - 1) or int(starts.ravel()[0]) != lo
                or min(int(ends.ravel()[0]), width) != hi):
            return None
    return p1.input[0]


def _rope_table(model, name: str, shape: list[int]) -> np.ndarray | None:
    """A constant cos/sin table ``(…1, T, D)`` for ``x`` of ``shape`` whose two halves along
    the last axis are equal (the rotate-half layout): its first half, ``(T, D/2)``."""
    c = constant(model, name)
    t, d = shape[-2], shape[-1]
    if c is None or c.ndim < 2 or c.shape[-2:] != (t, d) or any(n != 1 for n in c.shape[:-2]):
        return None
    c = c.reshape(t, d)
    return c[:, : d // 2] if np.array_equal(c[:, : d // 2], c[:, d // 2:]) else None


class FuseRotary(Transformation):
    """Rotate-half RoPE ``x * cos + Concat(-x₂, x₁) * sin`` (``x₁``, ``x₂`` the halves of the
    last axis by ``Slice`` or ``Split``; constant tables with equal halves, as
    ``cat([θ, θ]).cos()`` gives) on ``x`` of shape ``(B, H, T, D)`` or ``(B, T, D)`` →
    ``RotaryEmbedding(x, cos_cache, sin_cache)`` (opset 23, non-interleaved, no position ids)."""

    def _match(self, model, neg):
        cat = _sole_consumer(model, neg.output[0], "Concat")
        shape = model.get_tensor_shape(neg.input[0])
        if cat is None or len(cat.input) != 2 or cat.input[0] != neg.output[0] or not shape:
            return None
        full = model.get_tensor_shape(cat.output[0])
        if full is None or not _last_axis_attr(cat, len(full)) or len(full) not in (3, 4):
            return None
        x = _halves(model, cat.input[1], neg.input[0], full[-1])
        mul_sin = _sole_consumer(model, cat.output[0], "Mul")
        if x is None or mul_sin is None:
            return None
        sin = _rope_table(model, _other(mul_sin, cat.output[0]), full)
        add = _sole_consumer(model, mul_sin.output[0], "Add")
        mul_cos = add and _producer(model, _other(add, mul_sin.output[0]), "Mul")
        if sin is None or mul_cos is None or x not in mul_cos.input:
            return None
        cos = _rope_table(model, _other(mul_cos, x), full)
        nodes = [model.find_producer(cat.input[1]), neg, cat, mul_sin, mul_cos, add]
        if model.find_producer(neg.input[0]) is not nodes[0]:
            nodes.insert(1, model.find_producer(neg.input[0]))
        if cos is None or not _internal(model, nodes, add.output[0]):
            return None
        return x, full, cos, sin, nodes, add.output[0]

    def apply(self, model):
        for neg in model.get_nodes_by_op_type("Neg"):
            found = self._match(model, neg)
            if found is None:
                continue
            x, shape, cos, sin, nodes, out = found
            name = fresh_name(model, "RotaryEmbedding")
            batch = (shape[0], *cos.shape)
            caches = _add_params(model, name, (np.broadcast_to(cos, batch),
                                               np.broadcast_to(sin, batch)))
            heads = {"num_heads": 1} if len(shape) == 3 else {}
            new = helper.make_node("RotaryEmbedding", [x, *caches], [out], name=name, **heads)
            _replace(model, nodes, new, "rotary")
            return model, True
        return model, False


# --- annotations -----------------------------------------------------------------------------

def pattern_owners(model) -> dict[str, str]:
    """Node name → the recognised pattern it belongs to."""
    return {name: p["pattern"] for p in patterns(model) for name in p["nodes"]}


def _marked(model) -> set[str]:
    return set(pattern_owners(model))


def is_square(model, node) -> bool:
    """``node`` squares one tensor: ``Mul(t, t)`` or ``Pow(t, 2)`` (a constant exponent 2)."""
    if len(node.input) != 2:
        return False
    if node.op_type == "Mul":
        return node.input[0] == node.input[1]
    return node.op_type == "Pow" and _is_scalar(model, node.input[1], 2.0, rel=0)


class MarkReluSquared(Transformation):
    """``Pow(r, 2)`` or ``Mul(r, r)`` with ``r = Relu(x)`` (ReLU², which ONNX has no op for) →
    annotation ``relu_squared`` on the ``Relu`` and the square; the graph is unchanged."""

    def apply(self, model):
        done = _marked(model)
        for sq in [*model.get_nodes_by_op_type("Pow"), *model.get_nodes_by_op_type("Mul")]:
            relu = _producer(model, sq.input[0], "Relu")
            if is_square(model, sq) and relu is not None and sq.name not in done:
                _record(model, {"pattern": "relu_squared", "nodes": [relu.name, sq.name]})
                return model, True
        return model, False


def _score_input(model, node) -> str | None:
    """The attention-score input of a node allowed between ``MatMul(q, kᵀ)`` and ``Softmax``:
    a ``Quant``'s input; the non-constant input of ``Div``/``Mul``/``Add`` by a constant (scale,
    additive mask); the non-constant branch of ``Where`` with a constant condition and fill
    (causal mask); else ``None``."""
    if node.op_type == "Quant":
        return node.input[0]
    if node.op_type in ("Div", "Mul", "Add", "Where"):
        first = 1 if node.op_type == "Where" else 0
        if node.op_type == "Where" and constant(model, node.input[0]) is None:
            return None
        data = [i for i in node.input[first:] if constant(model, i) is None]
        if len(data) == 1 and (node.op_type != "Div" or data[0] == node.input[0]):
            return data[0]
    return None


class MarkAttention(Transformation):
    """``MatMul(q, kᵀ) → [scale, mask, Quant] → Softmax → [Quant] → MatMul(·, v)`` (the scale a
    ``Div``/``Mul`` by a constant, the mask an ``Add`` of a constant or a ``Where`` with constant
    condition and fill; the way softmax attention is exported) → annotation
    ``softmax_attention`` on those nodes; the graph is unchanged."""

    def apply(self, model):
        done = _marked(model)
        for sm in model.get_nodes_by_op_type("Softmax"):
            if sm.name in done:
                continue
            chain, node = [sm], model.find_producer(sm.input[0])
            while node is not None and node.op_type != "MatMul":
                data = _score_input(model, node)
                if data is None:
                    break
                chain.insert(0, node)
                node = model.find_producer(data)
            if node is None or node.op_type != "MatMul":
                continue
            chain.insert(0, node)
            node = model.find_consumer(sm.output[0])
            while node is not None and node.op_type == "Quant":
                chain.append(node)
                node = model.find_consumer(node.output[0])
            if node is None or node.op_type != "MatMul":
                continue
            chain.append(node)
            _record(model, {"pattern": "softmax_attention", "nodes": [n.name for n in chain]})
            return model, True
        return model, False


class MarkAbsmaxQuant(Transformation):
    """The per-row dynamic int8 activation quantizer ``step = max(ReduceMax(Abs(x)), floor) /
    c`` (``ReduceMax`` over the last axis, the floor a ``Clip`` minimum, ``c`` a constant)
    feeding ``Quant`` scales (QONNX) or ``x / step → Quant → · * step`` (QCDQ) → annotation
    ``absmax_quant`` on all those nodes; the graph is unchanged."""

    def apply(self, model):
        done = _marked(model)
        for node in model.get_nodes_by_op_type("Abs"):
            if node.name in done:
                continue
            x = node.input[0]
            rmax = _sole_consumer(model, node.output[0], "ReduceMax")
            clip = rmax and _sole_consumer(model, rmax.output[0], "Clip")
            div = clip and _sole_consumer(model, clip.output[0], "Div")
            if (div is None or not _last_axis(model, rmax, x) or len(clip.input) < 2
                    or constant(model, clip.input[1]) is None
                    or any(constant(model, i) is None for i in clip.input[2:] if i)
                    or div.input[0] != clip.output[0] or constant(model, div.input[1]) is None):
                continue
            step, chain = div.output[0], [node, rmax, clip, div]
            for user in model.find_consumers(step):
                scale_of = {"Quant": list(user.input)[1:2] == [step],  # QONNX: the scale
                            "Div": list(user.input) == [x, step],   # QCDQ: x / step …
                            "Mul": step in user.input}              # … and back
                if not scale_of.get(user.op_type, False):
                    break
                chain.append(user)
            else:
                _record(model, {"pattern": "absmax_quant", "nodes": [n.name for n in chain]})
                return model, True
        return model, False


class MarkKvRepeat(Transformation):
    """``Unsqueeze → Tile`` (constant repeats) ``→ Reshape``: grouped-query attention's key /
    value heads repeated for their query heads, pure data movement → annotation
    ``kv_repeat``; the graph is unchanged."""

    def apply(self, model):
        done = _marked(model)
        for tile in model.get_nodes_by_op_type("Tile"):
            unsq = _producer(model, tile.input[0], "Unsqueeze")
            reshape = _sole_consumer(model, tile.output[0], "Reshape")
            if (tile.name in done or unsq is None or reshape is None
                    or constant(model, tile.input[1]) is None):
                continue
            _record(model, {"pattern": "kv_repeat",
                            "nodes": [unsq.name, tile.name, reshape.name]})
            return model, True
        return model, False


def _const_operand(model, node, name: str) -> bool:
    """Whether the operand of two-input ``node`` other than ``name`` is a constant."""
    return name in node.input and constant(model, _other(node, name)) is not None


class MarkLif(Transformation):
    """One step of an integer leaky integrate-and-fire neuron in float ops (how the SNN
    classifier's step exports): leak ``Floor((v * a + b) / c)``, ``u = Clip(leak + current)``
    (constant bounds), spike ``s = Cast(Greater(u, θ))``, reset ``v' = u - s * θ`` →
    annotation ``lif`` on those nodes; the graph is unchanged."""

    def _match(self, model, floor):
        div = _producer(model, floor.input[0], "Div")
        add_b = div and _producer(model, div.input[0], "Add")
        if add_b is None:
            return None
        leak = next((p for p in map(model.find_producer, add_b.input)
                     if p is not None and p.op_type == "Mul"), None)
        if (leak is None or constant(model, div.input[1]) is None
                or not _const_operand(model, add_b, leak.output[0])
                or not any(constant(model, i) is not None for i in leak.input)):
            return None
        add_cur = _sole_consumer(model, floor.output[0], "Add")
        clip = add_cur and _sole_consumer(model, add_cur.output[0], "Clip")
        if clip is None or any(constant(model, i) is None for i in clip.input[1:] if i):
            return None
        users = {n.op_type: n for n in model.find_consumers(clip.output[0])}
        gt, sub = users.get("Greater"), users.get("Sub")
        if (len(users) != 2 or gt is None or sub is None or gt.input[0] != clip.output[0]
                or constant(model, gt.input[1]) is None or sub.input[0] != clip.output[0]):
            return None
        cast = _sole_consumer(model, gt.output[0], "Cast")
        reset = cast and next((n for n in model.find_consumers(cast.output[0])
                               if n.op_type == "Mul" and n.output[0] == sub.input[1]), None)
        if reset is None or not _const_operand(model, reset, cast.output[0]):
            return None
        return [leak, add_b, div, floor, add_cur, clip, gt, cast, reset, sub]

    def apply(self, model):
        done = _marked(model)
        for floor in model.get_nodes_by_op_type("Floor"):
            nodes = None if floor.name in done else self._match(model, floor)
            if nodes is not None:
                _record(model, {"pattern": "lif", "nodes": [n.name for n in nodes]})
                return model, True
        return model, False


#: the pattern transformations :func:`recognise` applies, in order
PATTERNS = (FuseGeluErf, FuseLayerNorm, FuseRMSNorm, FuseRotary, MarkReluSquared, MarkAttention,
            MarkAbsmaxQuant, MarkKvRepeat, MarkLif)


def recognise(model):
    """``model`` with every :data:`PATTERNS` transformation applied, shapes re-inferred."""
    from qonnx.transformation.infer_shapes import InferShapes

    for pattern in PATTERNS:
        model = quiet(model.transform, pattern())
    return quiet(model.transform, InferShapes())

# the integer-ONNX idioms (their own module; imported last: it uses the helpers above)
from hwsim.compile.int_onnx import MarkIntegerOnnx  # noqa: E402

PATTERNS = (*PATTERNS, MarkIntegerOnnx)
# the opset-23 Attention op written out first, so the attention patterns below see it
from hwsim.compile.attention_op import DecomposeAttention  # noqa: E402

PATTERNS = (DecomposeAttention, *PATTERNS)
