"""The AirFM-DDA network: attention over the angle × delay grid, Doppler bins as features.

Layer sizes are not published (REFERENCE.md); this is our design, stated here:

* one token per (angle, delay) cell of the DDA grid; its features are the re/im parts of the
  ``P`` Doppler bins of that cell (``2P`` numbers) → ``Linear(2P, dim)``;
* frame-structure-aware positional encoding (FS-PE): the token's physical coordinates, derived
  from the frame structure rather than its index — spatial frequency ``sin θ`` of the angle bin
  (half-wavelength ULA), delay ``τ = d / (F·Δf)`` of the delay bin in units of a cyclic-prefix
  length taken as ``T_cp = frame_s/14 · 144/2048`` (a slot of 14 symbols; the exact normal CP
  is ``144/2192`` of a symbol plus its CP, 7 % shorter — the unit only rescales the encoding;
  delays past the CP cause inter-symbol interference, delays past ``1/Δf`` alias) —
  each expanded in sin/cos at four octaves and mapped by ``Linear(16, dim)``;
* ``layers`` pre-norm blocks, each one single-head attention (head dim = ``dim``, so one window
  is exactly one call of the attention-head kernel) and a ReLU MLP (``dim → 2·dim → dim``);
* window attention: the grid is cut into non-overlapping ``wa × wd`` (angle × delay) windows and
  each token attends to the tokens of its window only; with ``shift_windows`` every odd block
  first rolls the grid (cyclically) by half a window in both axes, so information crosses window
  borders from one block to the next (as in the Swin transformer); the global variant (same
  weights, same size) lets every token attend to all ``A·F`` tokens;
* output per token: ``Linear(dim, 2Q)`` plus a linear skip ``Linear(2P, 2Q)`` from the input
  features, i.e. the angle–delay grid of the ``Q`` output frames. The skip starts as the task's
  baseline (:func:`skip_init_weights`: linear extrapolation for prediction, the LS estimate of
  the current frame for estimation) and the head at zero, so an untrained net equals that
  baseline exactly and training learns the rest.

With ``weight_bits`` set, every Linear is a Brevitas ``QuantLinear`` at that weight width and
every Linear input and the attention's q, k, v are int8 (``QuantIdentity``): QAT. The network
input (the DDA grid, whose energy sits in a few cells) has one learned int8 scale per token
(angle–delay cell) with ``input_scale="token"``, or one per tensor with ``"tensor"``; the other
activations one per tensor.

With ``hw_graph`` the export is shaped for ``hwsim compile``: the tokens are kept in
window-major order (window by window, each window's cells angle-major; the host reorders the
input once and the output once), so cutting the grid into windows is a plain reshape that moves
no data; the host appends the 16 FS-PE features to every token (``embed`` and ``skip`` read
``2P + 16`` features, the skip's PE columns starting at zero), so no constant is added inside
the graph; the residual stream (the embedded tokens and each block's two residual adds), the
linear layers that feed it (``o``, ``m2``, ``head``, ``skip``) and the attention probabilities
get quantizers, so every LayerNorm and residual add reads quantized tensors. The quantizers
exist with ``weight_bits`` only: a float ``hw_graph`` net is the same net in that layout.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from hwsim.errors import HwsimError

__all__ = ["ATTENTIONS", "TASKS", "AirFMConfig", "AirFMNet", "AirFMTokens",
           "frame_combination_weights", "fs_pe_coords", "linear_extrapolation_weights",
           "skip_init_weights", "window_order"]

ATTENTIONS = ("window", "global")
TASKS = ("prediction", "estimation")


@dataclass(frozen=True)
class AirFMConfig:
    antennas: int = 8
    subcarriers: int = 32
    past: int = 8
    future: int = 2
    dim: int = 16
    layers: int = 2
    window_angle: int = 4
    window_delay: int = 8
    attention: str = "window"
    spacing_hz: float = 720e3
    frame_s: float = 0.5e-3
    weight_bits: int | None = None
    task: str = "prediction"
    shift_windows: bool = True
    input_scale: str = "tensor"
    hw_graph: bool = False

    def __post_init__(self):
        for name in ("antennas", "subcarriers", "past", "future", "dim", "layers",
                     "window_angle", "window_delay"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"AirFM {name} must be a positive integer, not {v!r}")
        if self.antennas % self.window_angle or self.subcarriers % self.window_delay:
            raise HwsimError(f"window {self.window_angle}×{self.window_delay} must tile the "
                             f"{self.antennas}×{self.subcarriers} angle × delay grid")
        if self.attention not in ATTENTIONS:
            raise HwsimError(f"attention must be one of {', '.join(ATTENTIONS)}, "
                             f"not {self.attention!r}")
        if self.task not in TASKS:
            raise HwsimError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")
        if self.task == "estimation" and self.future != 1:
            raise HwsimError("channel estimation outputs one frame (future must be 1)")
        if self.input_scale not in ("token", "tensor"):
            raise HwsimError(f"input scale must be token or tensor, not {self.input_scale!r}")
        if self.weight_bits not in (None, 4, 8):
            raise HwsimError(f"weight bits must be 4 or 8 (or float), not {self.weight_bits!r}")

    @property
    def tokens(self) -> int:
        return self.antennas * self.subcarriers

    @property
    def window_tokens(self) -> int:
        return self.tokens if self.attention == "global" else self.window_angle * self.window_delay

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, **kw) -> AirFMConfig:
        return AirFMConfig(**{**asdict(self), **kw})


def window_order(cfg: AirFMConfig) -> torch.Tensor:
    """Grid token index (angle-major ``a·F + d``) of each window-major token: window by window
    (windows angle-major), inside a window angle-major (identity for global attention)."""
    A, F = cfg.antennas, cfg.subcarriers
    idx = torch.arange(A * F)
    if cfg.attention == "global":
        return idx
    wa, wd = cfg.window_angle, cfg.window_delay
    return idx.reshape(A // wa, wa, F // wd, wd).permute(0, 2, 1, 3).reshape(-1)


def fs_pe_coords(cfg: AirFMConfig) -> torch.Tensor:
    """(A·F, 2) physical coordinates of the tokens: ``sin θ`` and ``τ / T_cp``."""
    A, F = cfg.antennas, cfg.subcarriers
    sin_theta = (torch.arange(A, dtype=torch.float32) - A // 2) * (2.0 / A)  # fftshifted bins
    t_cp = cfg.frame_s / 14 * 144 / 2048
    tau = torch.arange(F, dtype=torch.float32) / (F * cfg.spacing_hz)
    a, d = torch.meshgrid(sin_theta, tau / t_cp, indexing="ij")
    return torch.stack([a.reshape(-1), d.reshape(-1)], dim=-1)


def frame_combination_weights(past: int, combos) -> torch.Tensor:
    """(2Q, 2P) real matrix of ``Ŷ_q = Σ_t combos[q][t] · H_t`` on DDA features.

    A cell's frame ``t`` is the inverse Doppler DFT of its ``P`` (fftshifted) Doppler bins
    ``X_m``: ``H_t = P^{−1/2} Σ_m X_m e^{j2π(m − ⌊P/2⌋)t/P}``; the features are
    ``[Re X_0…X_{P−1}, Im X_0…X_{P−1}]``, the outputs ``[Re Ŷ_0…Ŷ_{Q−1}, Im Ŷ_0…]``.
    """
    k = torch.arange(past, dtype=torch.float64) - past // 2
    rows = []
    for combo in combos:
        c = torch.zeros(past, dtype=torch.complex128)
        for t, w in combo.items():
            c = c + w * torch.exp(2j * math.pi * k * t / past)
        rows.append(c / math.sqrt(past))
    c = torch.stack(rows)  # (Q, P) complex
    top = torch.cat([c.real, -c.imag], dim=1)
    bottom = torch.cat([c.imag, c.real], dim=1)
    return torch.cat([top, bottom]).to(torch.float32)


def linear_extrapolation_weights(past: int, future: int) -> torch.Tensor:
    """``Ĥ_{P+q} = (q+2)·H_{P−1} − (q+1)·H_{P−2}`` (the linear-extrapolation baseline)."""
    return frame_combination_weights(past, [{past - 1: q + 2, past - 2: -(q + 1)}
                                            for q in range(future)])


def skip_init_weights(cfg: AirFMConfig) -> torch.Tensor:
    """Prediction: linear extrapolation; estimation: the input's (LS) current frame ``P−1``."""
    if cfg.task == "estimation":
        return frame_combination_weights(cfg.past, [{cfg.past - 1: 1.0}])
    return linear_extrapolation_weights(cfg.past, cfg.future)


def _linear(i: int, o: int, bits: int | None) -> nn.Module:
    if bits is None:
        return nn.Linear(i, o)
    from brevitas.nn import QuantLinear

    return QuantLinear(i, o, bias=True, weight_bit_width=bits, return_quant_tensor=False)


def _act(bits: int | None) -> nn.Module:
    if bits is None:
        return nn.Identity()
    from brevitas.nn import QuantIdentity

    return QuantIdentity(bit_width=8, return_quant_tensor=False)


def _linear_q(i: int, o: int, bits: int | None, quantized_out: bool) -> nn.Module:
    """A linear layer, with an int8 output quantizer when ``quantized_out`` (and QAT)."""
    if bits is None or not quantized_out:
        return _linear(i, o, bits)
    from brevitas.nn import QuantLinear
    from brevitas.quant import Int8ActPerTensorFloat

    return QuantLinear(i, o, bias=True, weight_bit_width=bits, return_quant_tensor=False,
                       output_quant=Int8ActPerTensorFloat)


def _prob_act() -> nn.Module:
    """hw_graph: the attention probabilities as uint8 codes of 1/256."""
    from brevitas.nn import QuantIdentity

    from hwsim.compile.examples import ProbQuant

    return QuantIdentity(act_quant=ProbQuant, return_quant_tensor=False)


def _act_per_token(bits: int | None, tokens: int) -> nn.Module:
    """int8 input quantizer with one learned scale per token (per angle–delay cell)."""
    if bits is None:
        return nn.Identity()
    from brevitas.nn import QuantIdentity
    from brevitas.quant import Int8ActPerTensorFloat

    return QuantIdentity(act_quant=Int8ActPerTensorFloat, scaling_per_output_channel=True,
                         per_channel_broadcastable_shape=(1, tokens, 1),
                         scaling_stats_permute_dims=(1, 0, 2), return_quant_tensor=False)


class _Block(nn.Module):
    def __init__(self, cfg: AirFMConfig, shift: bool = False):
        super().__init__()
        d, b = cfg.dim, cfg.weight_bits
        self.cfg = cfg
        # shifted windows (odd blocks): the grid is rolled by half a window before cutting
        self.shift = ((cfg.window_angle // 2, cfg.window_delay // 2)
                      if shift and cfg.shift_windows and cfg.attention == "window" else (0, 0))
        self.norm1 = nn.LayerNorm(d)
        self.qa = _act(b)
        self.q, self.k, self.v = _linear(d, d, b), _linear(d, d, b), _linear(d, d, b)
        self.qq, self.kq, self.vq = _act(b), _act(b), _act(b)
        self.pq = _prob_act() if cfg.hw_graph and b is not None else nn.Identity()
        self.oa = _act(b)
        hw = cfg.hw_graph
        self.o = _linear_q(d, d, b, hw)
        self.norm2 = nn.LayerNorm(d)
        self.ma = _act(b)
        self.m1 = _linear(d, 2 * d, b)
        self.ha = _act(b)
        self.m2 = _linear_q(2 * d, d, b, hw)
        # hw_graph: the residual stream after each add is int8
        self.r1, self.r2 = (_act(b), _act(b)) if hw else (nn.Identity(), nn.Identity())

    def _windows(self, x: torch.Tensor) -> torch.Tensor:
        """(B, A·F, d) → (B·nw, w, d) token groups that attend among themselves."""
        c = self.cfg
        if c.attention == "global":
            return x
        B, d = x.shape[0], x.shape[-1]
        wa, wd = c.window_angle, c.window_delay
        if c.hw_graph:  # window-major tokens: a reshape (shifted: through the grid order)
            if self.shift == (0, 0):
                return x.reshape(-1, wa * wd, d)
            x = x[:, torch.argsort(window_order(c))]
        if self.shift != (0, 0):
            x = torch.roll(x.reshape(B, c.antennas, c.subcarriers, d),
                           (-self.shift[0], -self.shift[1]), dims=(1, 2))
        x = x.reshape(B, c.antennas // wa, wa, c.subcarriers // wd, wd, d)
        return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wa * wd, d)

    def _unwindows(self, x: torch.Tensor, B: int) -> torch.Tensor:
        c = self.cfg
        if c.attention == "global":
            return x
        wa, wd, d = c.window_angle, c.window_delay, x.shape[-1]
        if c.hw_graph and self.shift == (0, 0):
            return x.reshape(B, c.tokens, d)
        x = x.reshape(B, c.antennas // wa, c.subcarriers // wd, wa, wd, d)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, c.antennas, c.subcarriers, d)
        if self.shift != (0, 0):
            x = torch.roll(x, self.shift, dims=(1, 2))
        x = x.reshape(B, c.tokens, d)
        return x[:, window_order(c)] if c.hw_graph else x

    def qkv(self, x: torch.Tensor):
        """The attention's (q, k, v) per window: each (B·nw, w, d) (fake-quantized with QAT)."""
        h = self._windows(self.qa(self.norm1(x)))
        return self.qq(self.q(h)), self.kq(self.k(h)), self.vq(self.v(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        q, k, v = self.qkv(x)
        s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        a = self.pq(torch.softmax(s, dim=-1)) @ v
        x = self.r1(x + self.o(self.oa(self._unwindows(a, B))))
        h = torch.relu(self.m1(self.ma(self.norm2(x))))
        return self.r2(x + self.m2(self.ha(h)))


class AirFMNet(nn.Module):
    """(B, 2P, A, F) DDA features → (B, 2Q, A, F) future angle–delay grid."""

    def __init__(self, cfg: AirFMConfig):
        super().__init__()
        self.cfg = cfg
        b, d = cfg.weight_bits, cfg.dim
        self.register_buffer("coords", fs_pe_coords(cfg), persistent=False)
        self.ina = (_act_per_token(b, cfg.tokens) if cfg.input_scale == "token" else _act(b))
        hw = cfg.hw_graph
        # hw_graph: the host appends the 16 FS-PE features to each token, so ``embed`` on
        # ``2P + 16`` features is ``embed(f) + pe(pe_features)`` in one layer
        n_in = 2 * cfg.past + (16 if hw else 0)
        self.embed = _linear(n_in, d, b)
        self.pe = None if hw else _linear(16, d, b)
        self.tq = _act(b) if hw else nn.Identity()  # hw_graph: the embedded tokens are int8
        self.blocks = nn.ModuleList(_Block(cfg, shift=i % 2 == 1) for i in range(cfg.layers))
        self.norm = nn.LayerNorm(d)
        self.outa = _act(b)
        self.head = _linear_q(d, 2 * cfg.future, b, hw)
        self.skip = _linear_q(n_in, 2 * cfg.future, b, hw)
        self.yq = _act(b) if hw else nn.Identity()
        with torch.no_grad():  # start exactly at the linear-extrapolation baseline
            self.skip.weight.zero_()  # hw_graph: the PE columns start at zero
            self.skip.weight[:, :2 * cfg.past] = skip_init_weights(cfg)
            self.skip.bias.zero_()
            self.head.weight.zero_()
            self.head.bias.zero_()

    def pe_features(self) -> torch.Tensor:
        octaves = torch.tensor([1.0, 2.0, 4.0, 8.0]) * math.pi
        coords = self.coords[window_order(self.cfg)] if self.cfg.hw_graph else self.coords
        ang = coords[:, :, None] * octaves  # (T, 2, 4)
        return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1).reshape(self.cfg.tokens, 16)

    def grid_to_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2P, A, F) input features → (B, T, 2P) tokens in the net's order (with
        ``hw_graph``: window-major, the 16 FS-PE features appended, what the host streams into
        the compiled design)."""
        c = self.cfg
        if x.ndim != 4 or tuple(x.shape[1:]) != (2 * c.past, c.antennas, c.subcarriers):
            raise HwsimError(f"AirFM input must be (B, {2 * c.past}, {c.antennas}, "
                             f"{c.subcarriers}), got {tuple(x.shape)}")
        t = x.permute(0, 2, 3, 1).reshape(x.shape[0], c.tokens, 2 * c.past)
        if not c.hw_graph:
            return t
        pe = self.pe_features().to(t.dtype).expand(t.shape[0], -1, -1)
        return torch.cat([t[:, window_order(c)], pe], dim=-1)

    def tokens_to_grid(self, y: torch.Tensor) -> torch.Tensor:
        """(B, T, 2Q) output tokens in the net's order → (B, 2Q, A, F)."""
        c = self.cfg
        if c.hw_graph:  # window-major → grid order
            y = y[:, torch.argsort(window_order(c))]
        return y.reshape(y.shape[0], c.antennas, c.subcarriers, -1).permute(0, 3, 1, 2)

    def tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input features → (quantized token features (B, T, 2P [+ 16]), embedded tokens
        (B, T, d))."""
        return self._embed(self.grid_to_tokens(x))

    def _embed(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.ina(t)
        if self.pe is None:  # hw_graph: the PE features are part of the tokens
            return f, self.tq(self.embed(f))
        return f, self.embed(f) + self.pe(self.pe_features())

    def forward_tokens(self, t: torch.Tensor) -> torch.Tensor:
        """The net on tokens: (B, T, 2P) → (B, T, 2Q), both in the net's token order."""
        f, h = self._embed(t)
        for blk in self.blocks:
            h = blk(h)
        return self.yq(self.head(self.outa(self.norm(h))) + self.skip(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tokens_to_grid(self.forward_tokens(self.grid_to_tokens(x)))


class AirFMTokens(nn.Module):
    """The net on tokens (:meth:`AirFMNet.forward_tokens`), the graph a hardware export holds:
    the host reorders the DDA grid into tokens and back (:meth:`AirFMNet.grid_to_tokens`,
    :meth:`AirFMNet.tokens_to_grid`)."""

    def __init__(self, net: AirFMNet):
        super().__init__()
        self.net = net

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.net.forward_tokens(t)
