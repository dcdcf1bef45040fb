"""A whole BitNet decode step: one time-multiplexed decoder layer
(:class:`rtl.vitallm.decoder_layer.DecoderLayer`) run for every layer of the model, a row buffer
between them, and the end of the step (:class:`rtl.vitallm.lm_head.LmHead`).

Specification: :mod:`hwsim.golden.vitallm.decode_model` (golden, ``cfg`` layout, load beats,
cycle formula). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_model as spec
from rtl.common import saturate
from rtl.vitallm.decoder_layer import DecoderLayer
from rtl.vitallm.lm_head import LmHead

__all__ = ["DecodeModel"]

_LAYER_STREAMS = ("w", "kv", "wo", "w1", "w3", "w2")


class DecodeModel(wiring.Component):
    """Greedy next token of one decode token, every layer on one ``decoder-layer``.

    A token is its embedding row (residual codes), ``C = hidden/lanes`` beats on ``x``. The
    controller stores it in the row buffer, then for each layer ``l = 0 … layers − 1``:

    * **load**: takes layer ``l``'s beats on ``w``, ``kv``, ``wo``, ``w1``, ``w3``, ``w2``
      (as :class:`rtl.vitallm.decoder_layer.DecoderLayer`'s ports of the same names) and
      ``cfg`` (the layer's static-port values, :func:`hwsim.golden.vitallm.decode_model.
      cfg_words`), all at once, each stream until it has its
      :func:`~hwsim.golden.vitallm.decode_model.load_beats`; no beat is taken on these
      streams at any other time, so a host may present the next layer's beats at once;
    * **run**: sends the row buffer to the layer and writes the layer's output codes back,
      saturated to ``res_width`` bits.

    After the last layer the row goes to the ``lm-head`` unit; its ``{token, logit}`` beat
    leaves on ``y`` and the next token's row is taken meanwhile. The head's weights arrive on
    ``hw`` before the first token (``lm-head``'s ``w``), its final norm on static ports.

    Latency (every stream always valid, ``y`` always ready): :func:`hwsim.golden.vitallm.
    decode_model.latency_cycles` from the first ``x`` beat to the ``y`` beat.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
        The token's embedding row, ``C`` beats, lane 0 lowest.
    w, kv, wo, w1, w3, w2 : as :class:`rtl.vitallm.decoder_layer.DecoderLayer`, per layer.
    cfg : ``In(stream.Signature(unsigned(32)))``
        Per layer, the static ports of :class:`rtl.vitallm.decoder_layer.DecoderLayer`
        concatenated in :func:`hwsim.golden.vitallm.decode_model.cfg_fields` order, lowest
        word first.
    hw : as ``w`` of :class:`rtl.vitallm.lm_head.LmHead`.
    head_gamma, head_e : as ``gamma``, ``e`` of :class:`rtl.vitallm.lm_head.LmHead` (static).
    y : as :class:`rtl.vitallm.lm_head.LmHead`: one ``{token, logit}`` beat per token.
    length : as :class:`rtl.vitallm.decoder_layer.DecoderLayer` (``L = 1 … M``, default ``M``)
        Tokens this step sees, itself included; sampled with the token's first ``x`` beat
        and held inside for all its layers. Each layer's ``kv`` load is its ``L − 1``
        earlier rows.
    kv_new : as :class:`rtl.vitallm.decoder_layer.DecoderLayer`
        The new token's k, v rows of the layer on ``layer``, as each layer runs (valid-only:
        take each beat in its cycle). Appended to that layer's cache, they are the next
        step's ``kv`` rows.
    layer : ``Out(range(layers))``
        The layer being loaded or run.
    """

    def __init__(self, params: spec.DecodeModelParams):
        if not isinstance(params, spec.DecodeModelParams):
            self._MustUse__silence = True
            raise HwsimError(f"DecodeModel needs DecodeModelParams, not "
                             f"{type(params).__name__}")
        self.params = p = params
        self.dl = DecoderLayer(p.layer())
        self.head = LmHead(p.head())
        dm, hm = self.dl.signature.members, self.head.signature.members
        super().__init__({
            "x": dm["x"],
            **{k: dm[k] for k in _LAYER_STREAMS},
            "cfg": In(stream.Signature(unsigned(spec.CFG_WORD))),
            "hw": hm["w"], "head_gamma": hm["gamma"], "head_e": hm["e"],
            "y": hm["y"],
            "length": dm["length"],
            "kv_new": dm["kv_new"],
            "layer": Out(range(max(2, p.layers))),
        })

    def elaborate(self, platform):
        p = self.params
        q = p.layer()
        m = Module()
        m.submodules.decoder_layer = dl = self.dl
        m.submodules.lm_head = hd = self.head
        C, LN, RW = q.chunks, q.lanes, q.res_width
        beats = spec.load_beats(p)

        wiring.connect(m, wiring.flipped(self.hw), hd.w)
        wiring.connect(m, wiring.flipped(self.y), hd.y)
        m.d.comb += [hd.gamma.eq(self.head_gamma), hd.e.eq(self.head_e)]

        # ---- the layer's parameters: cfg words shifted in, the static ports sliced out ----
        fields = spec.cfg_fields(q)
        ncfg = beats["cfg"]
        cfg = Signal(unsigned(ncfg * spec.CFG_WORD))
        off = 0
        for name, bits in fields:
            m.d.comb += Value.cast(getattr(dl, name)).eq(cfg[off:off + bits])
            off += bits

        # ---- the row buffer ------------------------------------------------------------------
        buf = Memory(shape=unsigned(LN * RW), depth=C, init=[])
        m.submodules.row = buf
        rd = buf.read_port(domain="comb")
        wr = buf.write_port()
        chunk = Signal(range(C))                 # beat of the row (x in, feed, head)
        lane = Signal(range(LN))                 # code of the beat being collected
        held = [Signal(signed(RW), name=f"held{i}") for i in range(LN - 1)]
        code = Signal(signed(RW))
        m.d.comb += [rd.addr.eq(chunk), code.eq(saturate(dl.y.payload, p.res))]

        layer = Signal(range(max(2, p.layers)))
        m.d.comb += [self.layer.eq(layer), self.kv_new.eq(dl.kv_new)]

        # ---- the step's length: sampled with the first x beat, held for its layers ----------
        cur_len = Signal.like(dl.length, init=q.tokens)
        m.d.comb += dl.length.eq(cur_len)
        with m.If(self.x.valid & self.x.ready & (chunk == 0)):
            m.d.sync += cur_len.eq(self.length)

        # ---- the load streams: open while loading, each until it has its beats ------------
        loading = Signal()
        counts = {}
        done = []
        for name in (*_LAYER_STREAMS, "cfg"):
            n = beats[name]
            cnt = Signal(range(n + 1), name=f"{name}_beats")
            if name == "kv":                   # the L − 1 earlier rows of each KV head
                n = Signal.like(cnt, name="kv_rows")
                m.d.comb += n.eq(q.kv_heads * (cur_len - 1))
            counts[name] = cnt
            is_open = Signal(name=f"{name}_open")
            m.d.comb += is_open.eq(loading & (cnt != n))
            src = getattr(self, name)
            if name == "cfg":
                m.d.comb += src.ready.eq(is_open)
                with m.If(src.valid & src.ready):
                    m.d.sync += cfg.eq(Cat(cfg[spec.CFG_WORD:], src.payload))
            else:
                dst = getattr(dl, name)
                m.d.comb += [dst.payload.eq(src.payload), dst.valid.eq(src.valid & is_open),
                             src.ready.eq(dst.ready & is_open)]
            with m.If(src.valid & src.ready):
                m.d.sync += cnt.eq(cnt + 1)
            done.append(cnt == n)
        loaded = Signal()
        m.d.comb += loaded.eq(Cat(*done).all())

        # ---- the controller ----------------------------------------------------------------
        last_code = Signal()
        with m.FSM(name="ctrl"):
            with m.State("EMBED"):
                m.d.comb += [self.x.ready.eq(1), wr.addr.eq(chunk),
                             wr.data.eq(self.x.payload.as_value()), wr.en.eq(self.x.valid)]
                with m.If(self.x.valid):
                    m.d.sync += chunk.eq(Mux(chunk == C - 1, 0, chunk + 1))
                    with m.If(chunk == C - 1):
                        m.d.sync += layer.eq(0)
                        m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += loading.eq(1)
                with m.If(loaded):
                    m.d.sync += [c.eq(0) for c in counts.values()]
                    m.next = "FEED"
            with m.State("FEED"):
                m.d.comb += [dl.x.payload.as_value().eq(rd.data), dl.x.valid.eq(1)]
                with m.If(dl.x.ready):
                    m.d.sync += chunk.eq(Mux(chunk == C - 1, 0, chunk + 1))
                    with m.If(chunk == C - 1):
                        m.next = "COLLECT"
            with m.State("COLLECT"):
                m.d.comb += [dl.y.ready.eq(1), last_code.eq((lane == LN - 1) & (chunk == C - 1)),
                             wr.addr.eq(chunk), wr.data.eq(Cat(*held, code)),
                             wr.en.eq(dl.y.valid & (lane == LN - 1))]
                with m.If(dl.y.valid):
                    m.d.sync += lane.eq(Mux(lane == LN - 1, 0, lane + 1))
                    with m.Switch(lane):
                        for i in range(LN - 1):
                            with m.Case(i):
                                m.d.sync += held[i].eq(code)
                    with m.If(lane == LN - 1):
                        m.d.sync += chunk.eq(Mux(chunk == C - 1, 0, chunk + 1))
                    with m.If(last_code):
                        with m.If(layer == p.layers - 1):
                            m.next = "HEAD"
                        with m.Else():
                            m.d.sync += layer.eq(layer + 1)
                            m.next = "LOAD"
            with m.State("HEAD"):
                m.d.comb += [hd.x.payload.as_value().eq(rd.data), hd.x.valid.eq(1)]
                with m.If(hd.x.ready):
                    m.d.sync += chunk.eq(Mux(chunk == C - 1, 0, chunk + 1))
                    with m.If(chunk == C - 1):
                        m.next = "EMBED"
        return m
