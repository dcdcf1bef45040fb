"""``hwsim compile`` of a time-step graph with membrane state pairs (an SNN's step).

The graph (:mod:`models.snn.export`) maps ``(frame, v_1 … v_k) → (spikes, v_1' … v_k')``;
:func:`hwsim.compile.lower.lif.state_pairs` finds the pairs ``(v_i, v_i')`` by the LIF
pattern. Its sample is ``T`` frames ``(T, *frame shape)``: the golden graph, the reference
(onnxruntime on the original file) and the RTL each run the ``T`` steps of one sample from
zero membranes, the golden and the reference feeding ``v'`` back as ``v``, the RTL keeping the
membranes in its arrays. The RTL streams the ``T`` frames back to back and gives the ``T``
spike vectors; its cycles are :func:`hwsim.compile.backend.lif.schedule_lif`.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["DEFAULT_STEPS", "default_frames", "reference", "run_steps", "split_inputs"]

#: time steps of the default sample
DEFAULT_STEPS = 8


def split_inputs(graph, pairs) -> tuple[str, list[tuple[str, str]]]:
    """The data input's name and the state pairs; refuses any other extra input."""
    state = {a for a, _ in pairs}
    data = [i.name for i in graph.graph.input if i.name not in state]
    if len(data) != 1:
        raise HwsimError(f"hwsim compile takes models with one input besides membrane state "
                         f"pairs, not {len(data)}")
    return data[0], list(pairs)


def default_frames(shape, seed: int, steps: int = DEFAULT_STEPS) -> np.ndarray:
    """A seeded sparse sample of event counts: each pixel 1 with probability 0.1 per step."""
    rng = np.random.default_rng(seed)
    return (rng.random((steps, *shape)) < 0.1).astype(np.float32)


def _zeros(graph, pairs) -> dict:
    return {a: np.zeros(graph.get_tensor_shape(a), np.float32) for a, _ in pairs}


def run_steps(model, data: str, pairs, frames: np.ndarray, execute) -> list[dict]:
    """Execute ``model`` (``execute(model, inputs) → context``) over the frames, ``v'`` fed
    back as ``v``; the full context of every step."""
    state = _zeros(model, pairs)
    out = []
    for f in frames:
        ctx = execute(model, {data: f, **state})
        state = {a: ctx[b] for a, b in pairs}
        out.append(ctx)
    return out


def reference(path, data: str, pairs, frames: np.ndarray, graph) -> tuple[np.ndarray, list]:
    """onnxruntime on the original file over the steps: the spikes (T, …) of the first graph
    output, and every step's inputs (to verify the lowering on)."""
    from quant.onnx import ort_session
    sess = ort_session(path)
    # the loaded graph keeps the file's input and output order (its names may differ)
    f_in = dict(zip((i.name for i in graph.graph.input), (i.name for i in sess.get_inputs()),
                    strict=True))
    g_out = [o.name for o in graph.graph.output]
    state = _zeros(graph, pairs)
    spikes, feeds = [], []
    for f in frames:
        feed = {data: f.astype(np.float32), **state}
        feeds.append(feed)
        res = dict(zip(g_out, sess.run(None, {f_in[k]: v for k, v in feed.items()}),
                       strict=True))
        state = {a: res[b] for a, b in pairs}
        spikes.append(res[g_out[0]])
    return np.array(spikes), feeds
