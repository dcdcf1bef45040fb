"""KV-cache writer: int8 K/V rows to DRAM over an AXI4 write port.

Specification: :mod:`hwsim.golden.vitallm.kv_write` (layout, cycle formula).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import kv_write as spec
from rtl.common.axi import BURST_INCR, axi4_write_signature, size_code

__all__ = ["KvWrite"]


class KvWrite(wiring.Component):
    """Writes each row of ``kv`` as one AXI4 INCR burst at ``base_addr + row·row_bytes``.

    Per row: the first ``kv`` beat's ``row`` is sampled and the AW is sent (next cycle); the
    ``kv`` beats pass through a one-beat register to W (all strobes set, ``wlast`` on the row's
    last beat); the B response is taken and the row's index goes out on ``done``. One row at a
    time. Latency and interval: :func:`~hwsim.golden.vitallm.kv_write.latency_cycles`
    ``= (beats − 1)·T + latency + 5`` from the first ``kv`` beat to ``done``, a row every
    :func:`~hwsim.golden.vitallm.kv_write.row_interval_cycles` ``= (beats − 1)·T + max(latency
    + 4, T)`` (``T = data_bytes / bytes_per_cycle`` of the DRAM).

    Members
    -------
    m_axi : ``Out(axi4_write_signature(addr_width, data_bytes))``
        AXI4 write manager (:mod:`rtl.common.axi`); ``bresp`` is not checked.
    kv : ``In(stream.Signature(ArrayLayout(signed(8), data_bytes)))``
        Row codes, ``data_bytes`` per beat, ``row_bytes/data_bytes`` beats per row.
    row : ``In(range(rows))``
        The row's index in the cache, held with its first ``kv`` beat.
    done : ``Out(stream.Signature(range(rows)))``
        The index of each row once DRAM has acknowledged it (B response).
    busy : ``Out(1)``
        High from a row's first beat until its ``done`` beat is taken.
    """

    def __init__(self, params: spec.KvWriteParams):
        if not isinstance(params, spec.KvWriteParams):
            self._MustUse__silence = True
            raise HwsimError(f"KvWrite needs KvWriteParams, not {type(params).__name__}")
        self.params = p = params
        super().__init__({
            "m_axi": Out(axi4_write_signature(p.addr_width, p.data_bytes)),
            "kv": In(stream.Signature(data.ArrayLayout(signed(8), p.data_bytes))),
            "row": In(range(p.rows)),
            "done": Out(stream.Signature(unsigned(max(1, (p.rows - 1).bit_length())))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        p, m = self.params, Module()
        axi, n = self.m_axi, p.beats
        beat_in = Signal(range(n + 1))   # beats of this row taken from kv
        beat_out = Signal(range(n))      # beats of this row sent on W
        w_valid = Signal()
        w_data = Signal(8 * p.data_bytes)
        row = Signal.like(self.row)
        addr = Signal(p.addr_width)
        aw_pending = Signal()
        w_taken = axi.wvalid & axi.wready
        kv_taken = self.kv.valid & self.kv.ready
        m.d.comb += [axi.awaddr.eq(addr), axi.awlen.eq(n - 1), axi.awid.eq(0),
                     axi.awsize.eq(size_code(p.data_bytes)), axi.awburst.eq(BURST_INCR),
                     axi.awvalid.eq(aw_pending),
                     axi.wvalid.eq(w_valid), axi.wdata.eq(w_data),
                     axi.wstrb.eq((1 << p.data_bytes) - 1), axi.wlast.eq(beat_out == n - 1),
                     self.done.payload.eq(row)]
        with m.If(axi.awready):
            m.d.sync += aw_pending.eq(0)
        with m.If(self.done.valid & self.done.ready):
            m.d.sync += self.done.valid.eq(0)
        with m.If(kv_taken):
            m.d.sync += [w_valid.eq(1), w_data.eq(self.kv.payload.as_value()),
                         beat_in.eq(beat_in + 1)]
        with m.Elif(w_taken):
            m.d.sync += w_valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.kv.ready.eq(~self.done.valid | self.done.ready)
                with m.If(kv_taken):
                    m.d.sync += [row.eq(self.row), aw_pending.eq(1),
                                 addr.eq(p.base_addr + self.row * p.row_bytes)]
                    m.next = "ROW"
            with m.State("ROW"):
                m.d.comb += [self.kv.ready.eq((beat_in != n) & (~w_valid | axi.wready)),
                             self.busy.eq(1)]
                with m.If(w_taken):
                    m.d.sync += beat_out.eq(beat_out + 1)
                    with m.If(beat_out == n - 1):
                        m.d.sync += [beat_out.eq(0), beat_in.eq(0)]
                        m.next = "B"
            with m.State("B"):
                m.d.comb += [axi.bready.eq(1), self.busy.eq(1)]
                with m.If(axi.bvalid):
                    m.d.sync += self.done.valid.eq(1)
                    m.next = "IDLE"
        return m
