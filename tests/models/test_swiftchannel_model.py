"""Float SwiftChannel student: Conv3XC re-parameterization, PixelShuffle, sizes."""

from unittest.mock import patch

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from models.swiftchannel.model import (
    Conv3XC,
    StudentConfig,
    SwiftChannelNet,
    pixel_shuffle,
    reparameterize,
)

# float32 re-association (branches vs one folded conv): a few ulp of the output magnitude
RTOL, ATOL = 1e-5, 1e-5


def _randomize(net):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


def test_conv3xc_fold_equals_branches():
    torch.manual_seed(0)
    c = Conv3XC(3, 5, gain=2)
    _randomize(c)
    x = torch.randn(2, 3, 7, 6)
    want = c.branches(x)
    w, b = c.fused()
    assert w.shape == (5, 3, 3, 3) and b.shape == (5,)
    torch.testing.assert_close(torch.nn.functional.conv2d(x, w, b, padding=1), want,
                               rtol=RTOL, atol=ATOL)
    for mode in (True, False):
        torch.testing.assert_close(c.train(mode)(x), want, rtol=RTOL, atol=ATOL)


def test_conv3xc_fold_gradients_equal_branches():
    """Training through the fold gives the branch weights the same gradients as the branches."""
    c = Conv3XC(3, 4, gain=2)
    _randomize(c)
    x = torch.randn(2, 3, 5, 6)
    grads = []
    for run in (c.branches, c.forward):
        c.zero_grad()
        (run(x) ** 2).sum().backward()
        grads.append([p.grad.clone() for p in c.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(a.abs().max()))


@pytest.mark.parametrize("rf, rs", [(4, 4), (4, 1)])
def test_reparameterized_student_same_output(rf, rs):
    torch.manual_seed(1)
    net = SwiftChannelNet(StudentConfig(rf=rf, rs=rs))
    _randomize(net)
    x = torch.randn(2, 2, 6, 8)
    with patch.object(Conv3XC, "forward", Conv3XC.branches):  # the unfolded reference
        want = net.train()(x)
    plain = reparameterize(net)
    assert not any(isinstance(m, Conv3XC) for m in plain.modules())
    got = plain(x)
    assert got.shape == (2, 2, 6 * rf, 8 * rs)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))


def test_paper_student_size():
    plain = reparameterize(SwiftChannelNet(StudentConfig()))
    assert sum(p.numel() for p in plain.parameters()) == 7816  # paper: ≈ 7.8 k


def test_teacher_size_and_distillation_step():
    from models.channels import Geometry
    from models.swiftchannel.train import make_set, train

    teacher = SwiftChannelNet(StudentConfig.teacher(4, 1))
    assert sum(p.numel() for p in reparameterize(teacher).parameters()) == 126_212
    g = Geometry(bs_ant=4, ue_ant=2, subcarriers=16, space_comp=1)
    data = make_set(g, 16, seed=1)
    student = SwiftChannelNet(StudentConfig(rs=1))
    hist = train(student, data, 1, batch=8, teacher=reparameterize(teacher), distill=0.5)
    assert len(hist) == 1 and np.isfinite(hist[0])


def test_excess_loss_is_the_error_added_relative_to_the_reference():
    from models.swiftchannel.train import excess_loss

    h = torch.zeros(2, 2, 2, 1)
    ref = h.clone()
    ref[0, 0, 0, 0], ref[1, 0, 0, 0] = 1.0, 0.1  # the reference's own errors: 1 and 0.01
    pred = ref.clone()
    pred[:, 1, 0, 0] = torch.tensor([0.5, 0.05])  # adds 0.25 and 0.0025: 25 % to each
    assert float(excess_loss(pred, ref, h)) == pytest.approx(0.25)
    pred[1, 1, 0, 0] = 0.1  # the second sample now adds 100 % (its gap 3 dB, the first's 1 dB)
    assert float(excess_loss(pred, ref, h)) == pytest.approx((0.25 + 1.0) / 2)
    assert float(excess_loss(ref, ref, h)) == 0.0
    # a distillation step with it runs and its loss is finite
    from models.channels import Geometry
    from models.swiftchannel.train import make_set, train

    g = Geometry(bs_ant=4, ue_ant=2, subcarriers=16, space_comp=1)
    teacher = reparameterize(SwiftChannelNet(StudentConfig(rs=1)))
    hist = train(SwiftChannelNet(StudentConfig(rs=1)), make_set(g, 16, seed=1), 1, batch=8,
                 teacher=teacher, distill=0.1, excess=True)
    assert len(hist) == 1 and np.isfinite(hist[0])


def test_pixel_shuffle_matches_torch_and_layout():
    x = torch.arange(2 * 32 * 3 * 5, dtype=torch.float32).reshape(2, 32, 3, 5)
    assert torch.equal(pixel_shuffle(x, 4, 4), torch.nn.functional.pixel_shuffle(x, 4))
    y = pixel_shuffle(x, 4, 2)  # 32 = 4 · 4 · 2
    assert y.shape == (2, 4, 12, 10)
    assert y[1, 3, 4 * 2 + 1, 2 * 4 + 1] == x[1, 3 * 8 + 1 * 2 + 1, 2, 4]


def test_bad_config_and_input():
    with pytest.raises(HwsimError, match="feat"):
        StudentConfig(feat=0)
    with pytest.raises(HwsimError, match="input must be"):
        SwiftChannelNet()(torch.zeros(1, 3, 4, 4))


def test_float_gate_is_the_function_the_lut_tabulates():
    from hwsim.golden.swiftchannel import network as gold
    from models.swiftchannel.model import gate

    x = torch.linspace(-6, 6, 2001)
    g = gate(x)
    # saturates outside [−3, 3] (the LUT clamps its index there) …
    assert torch.all(g[x >= 3] == g[x >= 3][0]) and torch.all(g[x <= -3] == g[x <= -3][0])
    assert float(g[-1]) == pytest.approx(1 / (1 + np.exp(-3.0)) - 0.5)
    # … and inside, the int8 LUT (scale 2**-8, 512 bins) is within one code plus half a bin
    m, s = gold.lut_multiplier(6 / 1000)
    codes = np.arange(0, 2001)
    lut = gold.sigmoid_lut()[gold.lut_index(codes, 1000, m, s)] / gold.GATE_ONE
    step = 6 / 512 * 0.25 + 1 / gold.GATE_ONE  # max slope of sigmoid is 1/4
    assert np.max(np.abs(lut - g.numpy().astype(np.float64))) <= step


class _Blowup(torch.nn.Module):
    """A student whose weights are scaled by 1e3 before its ``at``-th forward call (what a bad
    Adam step does), to exercise the training loop's divergence guard."""

    def __init__(self, net, at: int):
        super().__init__()
        self.net, self.at, self.calls = net, at, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.at:
            with torch.no_grad():
                for p in self.net.parameters():
                    p.mul_(1e3)
        return self.net(x)


def test_training_rolls_back_a_diverged_epoch():
    from models.channels import Geometry
    from models.swiftchannel.train import DIVERGED_DB, make_set, train

    g = Geometry(bs_ant=4, ue_ant=2, subcarriers=16, space_comp=1)
    data = make_set(g, 16, seed=1)
    net = _Blowup(SwiftChannelNet(StudentConfig(rs=1)), at=2 * 2 + 1)  # 2 batches per epoch
    lines = []
    hist = train(net, data, 4, batch=8, log=lines.append)
    assert len(hist) == 4 and np.isfinite(hist[0])
    assert not hist[2] <= min(hist[:2]) * 10 ** (DIVERGED_DB / 10)  # epoch 3 blew up (NaN) …
    assert sum("rolled back" in ln for ln in lines) == 1       # … was rolled back once …
    assert hist[3] <= min(hist[:2]) * 10 ** (DIVERGED_DB / 10)  # … and training went on from there
