"""SNN classifier: integer SNN == quantized torch == ONNX, conv export, checkpoints, attention."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from models.snn.attention import AttentionConfig, crop_frames, roi_origin, saliency, von_mises_kernels
from models.snn.classifier import (
    QuantSnnClassifier,
    SnnClassifier,
    conv_as_dense,
    integer_layers,
    integer_predict,
    spike_counts_int,
)
from models.snn.events import convert_images, load_digits_images, to_frames
from models.snn.export import export_onnx, run_onnx
from models.snn.train import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def frames():
    images, labels = load_digits_images()
    return to_frames(convert_images(images[:6], labels[:6], seed=0))


def _active_model(bits):
    """An untrained QAT model whose weights are scaled so every layer spikes."""
    torch.manual_seed(bits)
    q = QuantSnnClassifier(weight_bits=bits)
    with torch.no_grad():
        q.fc1.weight.mul_(3)
        q.fc2.weight.mul_(3)
    return q.eval()


def test_conv_as_dense_equals_conv2d():
    rng = np.random.default_rng(0)
    w = rng.integers(-8, 8, (4, 1, 5, 5))
    x = rng.integers(0, 3, (48, 48))
    ref = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64)[None, None],
                                     torch.tensor(w, dtype=torch.float64), stride=6)
    dense = conv_as_dense(w, 48, 6)
    assert dense.shape == (256, 2304)
    assert np.array_equal(dense @ x.ravel(), ref.flatten().numpy().astype(np.int64))


@pytest.mark.parametrize("bits", [8, 4])
def test_integer_snn_equals_quantized_torch(frames, bits):
    q = _active_model(bits)
    with torch.no_grad():
        counts, rec = q(torch.as_tensor(frames, dtype=torch.float32), record=True)
    layers = integer_layers(q)
    assert [p.weight_bits for _, p in layers] == [bits] * 3
    assert all(int(r.sum()) > 0 for r in rec)  # every layer spikes: the comparison means something
    for i, f in enumerate(frames):
        ic, spikes = spike_counts_int(layers, f)
        assert np.array_equal(ic, counts[i].numpy().astype(np.int64))
        for layer, s in enumerate(spikes):
            assert np.array_equal(s, rec[layer][i].numpy().astype(np.int64))
    assert np.array_equal(integer_predict(layers, frames), counts.argmax(1).numpy())


def test_onnx_step_graph_equals_torch(frames, tmp_path):
    q = _active_model(8)
    with torch.no_grad():
        want = q(torch.as_tensor(frames, dtype=torch.float32)).numpy()
    got = run_onnx(export_onnx(q, tmp_path / "step.onnx"), frames)
    assert want.sum() > 0
    assert np.array_equal(got, want)  # integers in float32: exact, no tolerance


def test_qat_gradients_reach_every_layer(frames):
    q = _active_model(4).train()
    out = q(torch.as_tensor(frames[:2], dtype=torch.float32))
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1])).backward()
    for layer in (q.conv, q.fc1, q.fc2):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_float_model_shapes(frames):
    f = SnnClassifier()
    out = f(torch.as_tensor(frames[:2], dtype=torch.float32))
    assert out.shape == (2, 10)
    assert f.conv.weight.shape == (4, 1, 5, 5) and f.fc1.weight.shape == (512, 256)


def test_checkpoint_roundtrip(frames, tmp_path):
    q = _active_model(4)
    save_checkpoint(tmp_path / "q.safetensors", q, {"data": {"images": "digits"}})
    back, info = load_checkpoint(tmp_path / "q.safetensors")
    assert info["kind"] == "quant" and back.weight_bits == 4
    x = torch.as_tensor(frames[:2], dtype=torch.float32)
    with torch.no_grad():
        assert torch.equal(back(x), q(x))
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(HwsimError, match="not an hwsim SNN checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors")


def test_von_mises_kernels():
    k = von_mises_kernels()
    assert k.shape == (8, 13, 13)
    assert np.allclose(k.sum((1, 2)), 1.0, atol=1e-12)  # normalized in float64
    assert not np.allclose(k[0], k[2])  # orientations differ


def test_saliency_peaks_on_the_event_cluster():
    fr = np.zeros((1, 20, 64, 64), np.uint8)
    rng = np.random.default_rng(0)
    fr[0, :, 40:52, 10:22] = rng.integers(0, 2, (20, 12, 12))  # a busy patch
    fr[0, :, :, :] |= (rng.random((20, 64, 64)) < 0.01).astype(np.uint8)  # sparse noise
    sal = saliency(fr, AttentionConfig())
    cy, cx = np.unravel_index(np.argmax(sal[0]), sal[0].shape)
    assert 34 <= cy <= 58 and 4 <= cx <= 28
    y, x = roi_origin(sal[0], 48)
    assert 0 <= y <= 16 and 0 <= x <= 16
    out, origins = crop_frames(fr, 48, return_origins=True)
    assert out.shape == (1, 20, 48, 48) and tuple(origins[0]) == (y, x)
    assert out[0].sum() >= fr[0, :, 40:52, 10:22].sum()  # the patch is inside the crop


def test_crop_of_a_frame_of_the_crop_size_is_identity(frames):
    assert np.array_equal(crop_frames(frames[:2], 48), frames[:2])
    with pytest.raises(HwsimError, match="larger than the frame"):
        roi_origin(np.zeros((32, 32)), 48)
