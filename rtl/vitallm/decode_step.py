"""The attention block of a VitaLLM decode step: the TINT front end (ternary q, k, v, RoPE,
static int8) chained to the attention phase (on-chip KV cache, LO top-K, int8 attention),
the new token's k, v appended to the cache in between.

Specification: :func:`hwsim.golden.vitallm.decode_step.decode_step_attention`,
:func:`hwsim.golden.vitallm.decode_step.decode_step_cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_step as spec
from rtl.vitallm.decode_attention import DecodeAttention
from rtl.vitallm.qkv_frontend import QkvFrontend

__all__ = ["DecodeStep"]


class DecodeStep(wiring.Component):
    """One decode step's attention block from on-chip memories.

    The host loads the three projection matrices (``w``) and the cache of the ``L − 1``
    earlier tokens (``kv``, addressed rows, :class:`rtl.vitallm.decode_attention.DecodeAttention`;
    ``M`` slots per KV head) once; a step is then the token's int8 activations on ``x`` (with
    its ``amax``, RoPE row, the layer's scales and its length ``L`` on side ports, held through
    the step). The controller stores the front end's q, k, v codes as rows, writes the new k
    and v rows at slot ``L − 1`` of each KV head (``G`` cycles, shown on ``kv_new``) and
    sends the ``H`` query rows, with each head's score scale, to the attention phase over
    ``L`` tokens, whose output is the block's output. Successive tokens with ``L``, ``L + 1``,
    … thus each see the cache the previous ones left: the block generates a sequence.

    Latency (no idle input, no back-pressure): ``qkv_frontend_cycles + G +
    decode_attention_cycles(L)`` (:func:`hwsim.golden.vitallm.decode_step.decode_step_cycles`).

    Members
    -------
    w, x : as :class:`rtl.vitallm.qkv_frontend.QkvFrontend`
    amax, cos, sin, mults :
        as :class:`rtl.vitallm.qkv_frontend.QkvFrontend` (in this block and the layers that contain
        it: hold them from a token's first input beat to its last output beat)
    kv : as :class:`rtl.vitallm.decode_attention.DecodeAttention` (host writes; not during a step)
    score : ``In(ArrayLayout({m, s}, H))``
        Each query head's score scale ``m · 2**-s`` (``m`` ``mult_bits``, ``s`` ``shift_bits``
        bits, head 0 lowest); head ``h``'s is read as its query row goes to the attention
        phase: hold it from the first ``x`` beat to the step's last ``out`` beat.
    out : as :class:`rtl.vitallm.decode_attention.DecodeAttention`
    length : ``In(unsigned(bits(M)), init=M)``
        ``L``, the tokens this step attends to, itself included (``1 … M``; other values:
        undefined): the new k, v go to slot ``L − 1``. Static: held from a token's first
        input beat to its last output beat; undriven it stays ``M``.
    kv_new : ``Out(StructLayout({valid: 1, head: bits(G), k: d × int8, v: d × int8}))``
        A valid-only tap of the KV append, for a controller that writes the cache back to
        DRAM: ``valid`` is 1 for one cycle per KV head (``G`` consecutive cycles, head 0
        first), with that head's new ``k`` and ``v`` rows (slot ``L − 1``). It has no ready
        and never stalls the step: take each beat in its cycle.
    """

    def __init__(self, params: spec.DecodeStepParams):
        if not isinstance(params, spec.DecodeStepParams):
            self._MustUse__silence = True
            raise HwsimError(f"DecodeStep needs DecodeStepParams, not {type(params).__name__}")
        self.params = p = params
        self.fe = QkvFrontend(p.frontend())
        self.att = DecodeAttention(p.attention_phase())
        ap = p.attention_phase().attention()
        self.score_layout = data.StructLayout({"m": unsigned(ap.mult_bits),
                                               "s": unsigned(ap.shift_bits)})
        fs, asig = self.fe.signature.members, self.att.signature.members
        super().__init__({
            "w": fs["w"], "x": fs["x"], "amax": fs["amax"], "cos": fs["cos"],
            "sin": fs["sin"], "mults": fs["mults"], "kv": asig["kv"],
            "score": In(data.ArrayLayout(self.score_layout, p.heads)),
            "out": asig["out"],
            "length": asig["length"],
            "kv_new": Out(data.StructLayout({
                "valid": 1, "head": unsigned(max(1, (p.kv_heads - 1).bit_length())),
                "k": data.ArrayLayout(signed(8), p.head_dim),
                "v": data.ArrayLayout(signed(8), p.head_dim)})),
        })

    def elaborate(self, platform):
        p = self.params
        H, G, d, M = p.heads, p.kv_heads, p.head_dim, p.tokens
        m = Module()
        m.submodules.frontend = fe = self.fe
        m.submodules.attention = att = self.att
        wiring.connect(m, wiring.flipped(self.w), fe.w)
        wiring.connect(m, wiring.flipped(self.x), fe.x)
        wiring.connect(m, wiring.flipped(self.out), att.out)
        m.d.comb += [fe.amax.eq(self.amax), fe.cos.eq(self.cos), fe.sin.eq(self.sin),
                     fe.mults.eq(self.mults), att.length.eq(self.length)]

        # the front end's codes as rows: q (H), k (G), v (G)
        N = (H + 2 * G) * d
        rows = [Signal(data.ArrayLayout(signed(8), d), name=f"row{r}") for r in range(H + 2 * G)]
        e = Signal(range(N))
        idx = Signal(range(max(H, G)))
        appending = Signal()
        with m.FSM():
            with m.State("COLLECT"):
                m.d.comb += fe.out.ready.eq(1)
                with m.If(fe.out.valid):
                    with m.Switch(e):
                        for j in range(N):
                            with m.Case(j):
                                m.d.sync += rows[j // d][j % d].eq(fe.out.payload)
                    m.d.sync += e.eq(Mux(e == N - 1, 0, e + 1))
                    with m.If(e == N - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "APPEND"
            with m.State("APPEND"):
                # the new token's k and v rows at slot L − 1 of KV head idx, shown on kv_new
                m.d.comb += [appending.eq(1), self.kv_new.valid.eq(1),
                             self.kv_new.head.eq(idx)]
                with m.Switch(idx):
                    for g in range(G):
                        with m.Case(g):
                            m.d.comb += [self.kv_new.k.eq(rows[H + g]),
                                         self.kv_new.v.eq(rows[H + G + g]),
                                         att.kv.payload.addr.eq(g * M + self.length - 1)]
                m.d.comb += [att.kv.payload.k.eq(self.kv_new.k),
                             att.kv.payload.v.eq(self.kv_new.v)]
                m.d.sync += idx.eq(Mux(idx == G - 1, 0, idx + 1))
                with m.If(idx == G - 1):
                    m.next = "QUERY"
            with m.State("QUERY"):
                with m.Switch(idx):
                    for h in range(H):
                        with m.Case(h):
                            m.d.comb += [att.q.payload.q.eq(rows[h]),
                                         att.q.payload.mult.eq(self.score[h].m),
                                         att.q.payload.shift.eq(self.score[h].s)]
                m.d.comb += att.q.valid.eq(1)
                with m.If(att.q.ready):
                    m.d.sync += idx.eq(Mux(idx == H - 1, 0, idx + 1))
                    with m.If(idx == H - 1):
                        m.next = "COLLECT"
        # host cache writes reach the KV memories whenever the controller is not appending
        with m.If(appending):
            m.d.comb += att.kv.valid.eq(1)
        with m.Else():
            m.d.comb += [att.kv.payload.eq(self.kv.payload), att.kv.valid.eq(self.kv.valid)]
        m.d.comb += self.kv.ready.eq(~appending)
        return m
