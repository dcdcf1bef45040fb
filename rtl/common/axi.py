"""AXI4 manager-side port signatures (AMBA AXI4, ARM IHI 0022, sections A2 and A3).

Members carry the specification's signal names, so a component's port ``m_axi`` emits Verilog
ports ``m_axi__araddr``, ``m_axi__rvalid`` …: the names cocotb AXI models find from the prefix
``m_axi_`` (cocotbext-axi's ``AxiBus.from_prefix``) and :class:`hwsim.sim.axi_mem.AxiMemory`
reads. Only INCR bursts of the full bus width are issued; IDs are one bit, always 0; the cache,
protection, QoS, region and user signals are left out (their AXI4 defaults apply).
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BURST_INCR", "axi4_read_signature", "axi4_write_signature", "size_code"]

#: ``arburst``/``awburst`` code of an incrementing burst
BURST_INCR = 0b01


def size_code(data_bytes: int) -> int:
    """``arsize``/``awsize``: log2 of the bytes per beat."""
    return (data_bytes - 1).bit_length()


def axi4_read_signature(addr_width: int, data_bytes: int) -> wiring.Signature:
    """AR and R channels, manager side."""
    return wiring.Signature({
        "arid": Out(1), "araddr": Out(addr_width), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
        "rid": In(1), "rdata": In(8 * data_bytes), "rresp": In(2), "rlast": In(1),
        "rvalid": In(1), "rready": Out(1),
    })


def axi4_write_signature(addr_width: int, data_bytes: int) -> wiring.Signature:
    """AW, W and B channels, manager side."""
    return wiring.Signature({
        "awid": Out(1), "awaddr": Out(addr_width), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(2), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(8 * data_bytes), "wstrb": Out(data_bytes), "wlast": Out(1),
        "wvalid": Out(1), "wready": In(1),
        "bid": In(1), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
    })
