"""A whole BitNet decode step on the accelerator: the token's embedding row through every layer
on one time-multiplexed ``decoder-layer``, then the final norm, the LM head and the greedy token
(the ``decode-model`` kernel, :class:`rtl.vitallm.decode_model.DecodeModel`).

Per token, the controller runs the layers in order. For layer ``l`` it first **loads** the
layer: its seven ternary matrices (``w``: q, k, v; ``wo``; ``w1``; ``w3``; ``w2``, the
``decoder-layer`` word formats), its KV cache of the ``M − 1`` earlier tokens (``kv``) and its
parameters (``cfg``: the ``decoder-layer`` static ports packed into 32-bit words,
:func:`cfg_fields`) arrive on their own streams at the same time; then it **runs** the layer:
the residual row goes in, the layer's output row comes back into the row buffer, saturated to
``res_width`` bits. After the last layer the row goes to the ``lm-head`` unit, whose head is
loaded once, before the first token.

The layers' weights, caches and parameters stream in for every token: on chip are one layer's
weights (the MVUs' memories), one layer's KV cache, the row buffer and the head. A host or a
DRAM reader behind the streams supplies them; with every stream always valid the cycle count
is :func:`latency_cycles`.

A step's run-time ``length`` (``L = 1 … M``, the tokens it sees, itself included) goes to the
layer: each layer's cache then has ``L − 1`` rows, its new k, v leave on ``kv_new``, and a
host that appends them to the next step's caches generates a sequence
(:mod:`hwsim.sim.generate`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import lm_head as lh
from hwsim.golden.vitallm.attn_out import RATIO_BITS
from quant.qtype import QType

__all__ = ["CFG_WORD", "LOAD_PORTS", "DecodeModelParams", "cfg_fields", "cfg_words",
           "decode_model", "dram_bytes", "latency_cycles", "load_beats", "phase_cycles",
           "storage_bits", "stream_bound_cycles"]

#: Bits of a ``cfg`` word.
CFG_WORD = 32
#: The streams of a layer's load phase, in the order the manifest lists them.
LOAD_PORTS = ("w", "kv", "wo", "w1", "w3", "w2", "cfg")


@dataclass(frozen=True)
class DecodeModelParams(dl.DecoderLayerParams):
    """The whole-model decode accelerator: one ``decoder-layer`` run ``layers`` times per
    token, and an ``lm-head`` of ``vocab`` rows.

    Parameters
    ----------
    heads … kv_kib : as :class:`hwsim.golden.vitallm.decoder_layer.DecoderLayerParams`
        The decoder layer every layer of the model runs on (:meth:`layer`; ``tokens`` = M,
        the cached tokens a step attends to, itself included; ``res_width``: the residual
        codes between layers).
    layers, vocab : int
        Decoder layers of the model and rows of the LM head.
    head_gamma_frac, head_e_width : int
        Fractional bits of the final RMSNorm's gains and bits of its ε constant.

    Raises
    ------
    HwsimError
        One line, on sizes out of range (the layer and the head check their own).
    """

    layers: int = 2
    vocab: int = 256
    head_gamma_frac: int = 16
    head_e_width: int = 64

    def __post_init__(self):
        super().__post_init__()
        check_ints(self, "decode-model", (("layers", 1, 1024),))
        self.head()

    def layer(self) -> dl.DecoderLayerParams:
        """The decoder layer's own parameters."""
        return dl.DecoderLayerParams(**{f.name: getattr(self, f.name)
                                        for f in fields(dl.DecoderLayerParams)})

    @property
    def res(self) -> QType:
        return QType(self.res_width)

    def head(self) -> lh.LmHeadParams:
        """The ``lm-head`` unit (final RMSNorm, int8 head, greedy token) on the row buffer's
        ``res_width``-bit codes."""
        return lh.LmHeadParams(hidden=self.hidden, vocab=self.vocab, lanes=self.lanes,
                               gamma_frac=self.head_gamma_frac, e_width=self.head_e_width,
                               res_width=self.res_width)


def cfg_fields(p: dl.DecoderLayerParams) -> list[tuple[str, int]]:
    """The ``decoder-layer`` static ports in ``cfg`` order with their widths in bits: the
    layer's parameter word is their concatenation, the first field lowest. The SubLN ports
    are there only with ``subln``, the SiLU gate's requantizer only with ``act="silu"``."""
    H, G, d = p.heads, p.kv_heads, p.head_dim
    ap = p.decode_attention().attention()
    g, mult = lc.NORM_GAMMA_BITS, lc.MULT_BITS + 6
    fields = [("norm_gamma", p.hidden * g), ("norm_e", p.norm_e_width),
              ("cos", d * lc.ROPE_CODE.width), ("sin", d * lc.ROPE_CODE.width),
              ("mults", (H + 2 * G) * mult), ("score", H * (ap.mult_bits + ap.shift_bits)),
              ("ratio", H * RATIO_BITS), ("sub_gamma", p.hidden * g), ("sub_e", p.sub_e_width),
              ("res_mult", mult), ("ffn_gamma", p.hidden * g), ("ffn_e", p.ffn_e_width),
              ("gate_mult", lc.MULT_BITS), ("gate_shift", 6),
              ("ffn_sub_gamma", p.ffn * g), ("ffn_sub_e", p.ffn_sub_e_width), ("w2_mult", mult)]
    drop = ({"sub_gamma", "sub_e", "ffn_sub_gamma", "ffn_sub_e"} if not p.subln else set()) | (
        {"gate_mult", "gate_shift"} if p.act != "silu" else set())
    return [f for f in fields if f[0] not in drop]


def cfg_words(values: dict[str, int], p: dl.DecoderLayerParams) -> list[int]:
    """One layer's ``cfg`` words: the packed static-port values (``values[name]``, unsigned,
    as :func:`hwsim.kernels.decoder_layer.port_values` gives them) concatenated in
    :func:`cfg_fields` order, cut into ``CFG_WORD``-bit words, lowest first."""
    word, off = 0, 0
    for name, bits in cfg_fields(p):
        v = int(values[name])
        if not 0 <= v < 1 << bits:
            raise HwsimError(f"decode-model cfg field {name} does not fit {bits} bits")
        word |= v << off
        off += bits
    n = -(-off // CFG_WORD)
    return [word >> (CFG_WORD * i) & ((1 << CFG_WORD) - 1) for i in range(n)]


def _length(p: DecodeModelParams, length: int | None) -> int:
    if length is None:
        return p.tokens
    if isinstance(length, bool) or not isinstance(length, int | np.integer) \
            or not 1 <= length <= p.tokens:
        raise HwsimError(f"decode-model length must be 1 … {p.tokens}, not {length!r}")
    return int(length)


def load_beats(p: DecodeModelParams, length: int | None = None) -> dict[str, int]:
    """Beats of each load stream per layer for a step over ``L = length`` visible tokens
    (default ``tokens``): the ternary matrices' words (``lanes`` weights a word), the
    ``G·(L − 1)`` cached rows, the ``cfg`` words."""
    q, L = p.layer(), p.lanes
    sh = q.projection_shapes()
    words = {n: r * c // L for n, (r, c) in sh.items()}
    bits = sum(b for _, b in cfg_fields(q))
    return {"w": words["wq"] + words["wk"] + words["wv"],
            "kv": q.kv_heads * (_length(p, length) - 1),
            "wo": words["wo"], "w1": words["w1"], "w3": words["w3"], "w2": words["w2"],
            "cfg": -(-bits // CFG_WORD)}


def phase_cycles(p: DecodeModelParams, length: int | None = None) -> dict[str, int]:
    """Cycles of one token over ``L = length`` visible tokens (default ``tokens``) by phase,
    in sequence (their sum is :func:`latency_cycles`), every stream always valid and ``y``
    always ready:

    * ``embed``: the ``C`` beats of the token's row into the row buffer;
    * ``load``: per layer, the longest load stream's beats and one cycle to see the last;
    * ``layer``: per layer, the ``decoder-layer``'s latency from its first row beat (sent
      from the row buffer, one per cycle) to its last output code
      (:func:`hwsim.golden.vitallm.decoder_layer.latency_cycles` at ``L``);
    * ``head``: the ``lm-head``'s latency from its first row beat to the token beat
      (:func:`hwsim.golden.vitallm.lm_head.latency_cycles`).
    """
    n, L = p.layers, _length(p, length)
    return {"embed": p.chunks,
            "load": n * (max(load_beats(p, L).values()) + 1),
            "layer": n * dl.latency_cycles(p.layer(), L),
            "head": lh.latency_cycles(p.head())}


def latency_cycles(p: DecodeModelParams, length: int | None = None) -> int:
    """First ``x`` beat to the ``y`` beat of one token over ``L = length`` visible tokens: the
    sum of :func:`phase_cycles`."""
    return sum(phase_cycles(p, length).values())


def dram_bytes(p: DecodeModelParams, length: int | None = None) -> dict[str, int]:
    """Off-chip bytes one token over ``L = length`` visible tokens (default ``tokens``) moves,
    by kind, with their ``total``: what a DRAM behind the load streams serves and takes.

    * ``embed``: the token's residual row (``hidden`` codes of ``res_width`` bits);
    * ``weights``: every layer's seven ternary matrices, 2 bits a weight (the stream words are
      the Hugging Face packed layout's 4 weights a byte);
    * ``cfg``: every layer's parameter words (``CFG_WORD`` bits each);
    * ``kv_read``: every layer's ``G·(L − 1)`` cached k, v rows (``2·head_dim`` int8 codes);
    * ``kv_write``: every layer's ``G`` new k, v rows (``kv_new``), written back.

    The LM head's weights stay on chip (loaded once before the first token) and are not
    counted; the result is exact integers."""
    n, L = p.layers, _length(p, length)
    row = 2 * p.head_dim
    d = {"embed": -(-p.hidden * p.res_width // 8), "weights": n * p.weight_bytes,
         "cfg": n * load_beats(p, L)["cfg"] * CFG_WORD // 8,
         "kv_read": n * p.kv_heads * (L - 1) * row, "kv_write": n * p.kv_heads * row}
    return {**d, "total": sum(d.values())}


def stream_bound_cycles(p: DecodeModelParams, bytes_per_cycle: int,
                        length: int | None = None) -> int:
    """The weight-streaming bound of one token: ``ceil(dram_bytes(p, L)["total"] /
    bytes_per_cycle)`` cycles, the fewest in which a DRAM of ``bytes_per_cycle`` can move a
    token's off-chip bytes (no design that streams them is faster)."""
    if isinstance(bytes_per_cycle, bool) or not isinstance(bytes_per_cycle, int | np.integer) \
            or bytes_per_cycle < 1:
        raise HwsimError(f"DRAM bytes per cycle must be a positive integer, not "
                         f"{bytes_per_cycle!r}")
    return -(-dram_bytes(p, length)["total"] // int(bytes_per_cycle))


def storage_bits(p: DecodeModelParams) -> int:
    """Bits of the design's memories and registers that hold data: the decoder layer's, the
    head's, the row buffer (``hidden · res_width``) and the ``cfg`` register."""
    cfg = load_beats(p)["cfg"] * CFG_WORD
    return (dl.storage_bits(p.layer()) + lh.storage_bits(p.head()) + p.hidden * p.res_width
            + cfg)


def decode_model(x, layers: list[dict], head: dict, p: DecodeModelParams,
                 length: int | None = None):
    """Golden of one token over ``L = length`` visible tokens (default ``tokens``; the layers'
    caches hold at least ``L − 1`` rows): the embedding row ``x`` (hidden,), per layer the
    arrays of :func:`hwsim.golden.vitallm.decoder_layer.decoder_layer` (without ``x``), and the
    head's ``g``, ``E``, ``w`` → ``(token, logit, rows)``: the greedy token, its logit and the
    residual row after every layer (the row buffer's codes).

    A layer's output row must fit ``res_width`` bits (the row buffer saturates; the integer
    model does not): one that does not is an error here rather than a silent difference."""
    if len(layers) != p.layers:
        raise HwsimError(f"decode-model has {p.layers} layers, got arrays for {len(layers)}")
    row = p.res.check(np.ravel(x), "decode-model embedding row")
    if row.shape != (p.hidden,):
        raise HwsimError(f"decode-model needs {p.hidden} residual codes, got {row.size}")
    rows = []
    for i, a in enumerate(layers):
        out = dl.decoder_layer({**a, "x": row}, p.layer(), _length(p, length))
        if out.min() < p.res.min_code or out.max() > p.res.max_code:
            raise HwsimError(f"decode-model layer {i}'s output row exceeds {p.res.width} bits")
        row = out
        rows.append(row)
    tok, logit, _ = lh.lm_head(row, head["g"], int(head["E"]), head["w"], p.head())
    return tok, logit, rows
