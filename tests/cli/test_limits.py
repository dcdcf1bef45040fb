"""Limits before work: each command refuses a size it cannot hold with one line, exit 2, before
anything is allocated, elaborated, simulated or synthesized, and writes nothing.

The hostile cases run in a subprocess under a memory and time limit, so a regression fails the
test instead of hanging or exhausting the machine.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwsim import limits
from hwsim.cli import main
from hwsim.kernels import KERNELS

ROOT = Path(__file__).resolve().parents[2]
#: address space of the subprocess: a command that starts allocating fails fast instead
_MEMORY = 3 << 30
_TIMEOUT = 60


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY, _MEMORY))


def _hwsim(*argv) -> tuple[int, str, float]:
    """Run ``hwsim ARGV`` in a fresh interpreter under a memory limit and a timeout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", *map(str, argv)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=_TIMEOUT,
                          preexec_fn=_limit_memory)
    return proc.returncode, proc.stderr, time.perf_counter() - t


def _refused(argv, out: Path, *words: str) -> str:
    rc, err, wall = _hwsim(*argv)
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("hwsim: error: "), err
    for w in words:
        assert w in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir()), list(out.rglob("*"))
    assert wall < _TIMEOUT / 2
    return lines[0]


# ---- kernels ---------------------------------------------------------------------------------
def test_rtl_emit_huge_rows_is_refused(tmp_path):
    out = tmp_path / "rtl"
    line = _refused(["rtl", "emit", "ternary-mvu", "--rows", 100_000_000, "-o", out], out,
                    "--rows", "100,000,000", f"{limits.MAX_KERNEL_PARAM:,}", "--force")
    assert "exceeds the limit" in line


def test_rtl_emit_storage_over_the_limit_is_refused(tmp_path):
    out = tmp_path / "rtl"
    _refused(["rtl", "emit", "ternary-mvu", "--rows", 4096, "--cols", 4096, "-o", out], out,
             "on-chip memory", f"{limits.MAX_DESIGN_BITS:,} bits")


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_every_kernel_parameter_is_bounded(kernel, capsys, tmp_path):
    """Every integer size parameter of every registered kernel is refused past the limit,
    in-process and before its parameter object is built."""
    k = KERNELS[kernel]
    sizes = [cp for cp in k.cli_params if cp.type is int and not cp.name.endswith("seed")]
    if not sizes:
        pytest.skip(f"{kernel} has no integer size parameter")
    opt = f"--{sizes[0].name.replace('_', '-')}"
    out = tmp_path / "rtl"
    assert main(["rtl", "emit", kernel, opt, str(limits.MAX_KERNEL_PARAM + 1), "-o",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and opt in err[0] and "exceeds the limit" in err[0], err
    assert not out.exists()


def test_parameters_that_build_weights_are_bounded_together(tmp_path):
    # swiftchannel-conv builds oc·ic·k·k int64 weights from the raw values: 288 GiB here
    out = tmp_path / "rtl"
    _refused(["rtl", "emit", "swiftchannel-conv", "--ic", 65536, "--oc", 65536, "-o", out], out,
             "--ic × --oc", "times the default", f"{limits.MAX_KERNEL_SCALE:,}")


@pytest.mark.parametrize("kernel,args", [
    ("swiftchannel-gate", ["--lanes", "4096"]),              # one 4 Kibit LUT ROM per lane
    ("attention-head", ["--max-len", "16384", "--head-dim", "256", "--lanes", "16"]),
])
def test_storage_formula_of_the_golden_module_is_used(kernel, args, tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["rtl", "emit", kernel, *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{kernel} on-chip memory" in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("kernel", ["decoder-layer", "decode-model"])
@pytest.mark.parametrize("opt,value,words", [
    ("--weight-kib", 32, ("46080 B at 2 bits", "32 KiB weight memory")),
    ("--kv-kib", 24, ("KV cache of 256 tokens", "24 KiB KV memory")),
])
def test_a_layer_that_does_not_fit_its_buffers_is_refused(kernel, opt, value, words, tmp_path,
                                                          capsys):
    """BitNet-tiny's layer (46 080 B of ternary weights; 256 cached tokens: 40 960 B of K, V and
    LO codes) against VitaLLM's 32 KiB weight and 24 KiB KV buffers: one line before anything
    is elaborated."""
    out = tmp_path / "rtl"
    assert main(["rtl", "emit", kernel, "--heads", "4", "--kv-heads", "2", "--head-dim", "32",
                 "--ffn", "352", "--tokens", "256", "--keep", "8", "--lanes", "16", "--force",
                 opt, str(value), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
    assert not out.exists()


def test_golden_rtl_limits_are_applied(tmp_path, capsys):
    # lo-topk's selector is a prefix chain `tokens` deep: 16 384 tokens is a RecursionError
    out = tmp_path / "rtl"
    assert main(["rtl", "emit", "lo-topk", "--tokens", "16384", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["hwsim: error: lo-topk tokens 16,384 exceeds the limit 4,096; pass --force "
                   "to elaborate anyway"]
    assert not out.exists()


def test_every_kernel_default_is_within_the_limits_and_states_its_storage():
    for k in KERNELS.values():
        p = k.params(**{cp.name: cp.default for cp in k.cli_params})
        limits.check_kernel_sim(k, p)
        assert limits.storage_bits(k, p) > 0, f"{k.name}: no storage_bits in its golden module"


def test_sim_4096_square_one_lane_is_refused(tmp_path):
    out = tmp_path / "sim"
    _refused(["sim", "ternary-mvu", "--rows", 4096, "--cols", 4096, "--lanes", 1, "-o", out],
             out, "ternary-mvu", "exceeds the limit", "--force")


def test_sim_cycles_over_the_limit_is_refused(tmp_path, capsys):
    # 512 × 512 on one lane: 262 656 cycles per vector (the kernel's own formula), 0.5 Mibit
    out = tmp_path / "sim"
    assert main(["sim", "ternary-mvu", "--rows", "512", "--cols", "512", "--lanes", "1",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "simulated cycles per item 262,660" in err[0], err
    assert f"{limits.MAX_SIM_CYCLES:,}" in err[0]
    assert not out.exists()


def test_fpga_build_that_cannot_fit_is_refused_before_synthesis(tmp_path):
    out = tmp_path / "fpga"
    line = _refused(["fpga", "build", "ternary-mvu", "--rows", 4096, "--cols", 4096,
                     "--target", "ecp5-ulx3s-12f", "-o", out], out,
                    "does not fit LFE5U-12F", "before synthesis", "--no-fit-check")
    assert "needs memory 33,587,200 bits > 784,128" in line


def test_fpga_fit_check_uses_the_usplus_resource_model():
    from fpga.parts import get_part
    from hwsim.errors import HwsimError
    from hwsim.estimate.fpga import fit_before_synthesis

    k = KERNELS["ternary-mvu"]
    fit_before_synthesis(k, k.params(lanes=16, rows=256, cols=256), get_part("xczu28dr"), "mvu")
    # 65 536 lanes: 0.6 Mbit of memory fits, the logic (≈ 16 LUTs per lane) does not
    with pytest.raises(HwsimError, match=r"does not fit xczu28dr.*needs LUT 1,079,562 > 425,280"):
        fit_before_synthesis(k, k.params(lanes=65536, rows=1, cols=65536),
                             get_part("xczu28dr"), "mvu")


# ---- the override ----------------------------------------------------------------------------
def test_force_lets_a_moderately_over_design_be_emitted(tmp_path, capsys):
    """One row over the parameter limit (a 131 kbit design, cheap to elaborate) is refused,
    and emitted with --force."""
    args = ["rtl", "emit", "ternary-mvu", "--rows", "65537", "--cols", "1", "--lanes", "1"]
    out = tmp_path / "rtl"
    assert main([*args, "-o", str(out)]) == 2
    assert "--rows 65,537 exceeds the limit 65,536" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--force", "-o", str(out)]) == 0
    assert (out / "ternary_mvu.v").stat().st_size > 0


# ---- estimate --------------------------------------------------------------------------------
def test_estimate_sweep_grid_is_bounded(tmp_path):
    out = tmp_path / "sweep"
    axis = ",".join(str(i) for i in range(1, 91))
    _refused(["estimate", "bitnet-tiny", "--target", "vitallm", "--sweep", f"lanes={axis}",
              f"tiles={axis}", "booth_lanes=" + ",".join(str(i) for i in range(1, 101)),
              "--out", out], out, "--sweep points 810,000", f"{limits.MAX_SWEEP_POINTS:,}",
             "--max-points")


def test_estimate_max_points_raises_the_bound(tmp_path, capsys):
    out = tmp_path / "sweep"
    args = ["estimate", "bitnet-tiny", "--target", "vitallm", "--sweep", "lanes=8,16",
            "tiles=1,2", "--out", str(out)]
    assert main([*args, "--max-points", "3"]) == 2
    assert "--sweep points 4 exceeds the limit 3" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--max-points", "4"]) == 0
    assert (out / "sweep.json").is_file()


@pytest.mark.parametrize("opt", ["--context", "--prompt"])
def test_estimate_token_ranges(opt, tmp_path):
    _refused(["estimate", "bitnet-tiny", "--target", "vitallm", opt, 10**12], tmp_path / "none",
             opt, "1,000,000,000,000 tokens", "exceeds the limit")


def test_estimate_decode_at_a_long_context_is_closed_form():
    from hwsim.estimate import estimate

    t = time.perf_counter()
    est = estimate("bitnet-tiny", "vitallm", prompt=1, context=limits.MAX_CONTEXT)
    assert time.perf_counter() - t < 10
    assert est.decode.seconds > 0


# ---- BitNet configs --------------------------------------------------------------------------
def _hf_config(path: Path, **over) -> Path:
    d = {"hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, **over}
    path.write_text(json.dumps(d))
    return path


def test_train_bitnet_billion_layers_is_refused(tmp_path):
    cfg = _hf_config(tmp_path / "config.json", num_hidden_layers=10**9)
    out = tmp_path / "train"
    _refused(["train", "bitnet", "--config", cfg, "-o", out], out, "layers", "1,048,576")


def test_train_bitnet_model_larger_than_memory_is_refused(tmp_path):
    cfg = _hf_config(tmp_path / "big.json", hidden_size=8192, intermediate_size=32768,
                     num_hidden_layers=4096, num_attention_heads=64, num_key_value_heads=64)
    out = tmp_path / "train"
    _refused(["train", "bitnet", "--config", cfg, "-o", out], out, "parameters need",
             "GiB available")


def test_export_bitnet_billion_layers_is_refused(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    _hf_config(ck / "config.json", num_hidden_layers=10**9)
    header = b"{}"  # a valid safetensors file with no tensors
    (ck / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    out = tmp_path / "onnx"
    _refused(["export", "bitnet", "--checkpoint", ck, "-o", out], out, "layers", "1,048,576")


def test_export_bitnet_model_larger_than_memory_is_refused(tmp_path):
    ck = tmp_path / "ck"
    ck.mkdir()
    _hf_config(ck / "config.json", hidden_size=8192, intermediate_size=32768,
               num_hidden_layers=4096, num_attention_heads=64, num_key_value_heads=64)
    header = b"{}"
    (ck / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header)
    out = tmp_path / "onnx"
    _refused(["export", "bitnet", "--checkpoint", ck, "-o", out], out, "parameters need",
             "GiB available")


@pytest.mark.parametrize("field,value", [
    ("hidden_size", 1.5), ("num_hidden_layers", True), ("vocab_size", "256"),
    ("rope_theta", "big"), ("tie_word_embeddings", "yes"), ("hidden_act", 3),
])
def test_hf_config_field_types(field, value):
    from hwsim.errors import HwsimError
    from models.bitnet.config import config_from_hf

    d = {"hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, field: value}
    with pytest.raises(HwsimError, match=field):
        config_from_hf(d)


def test_model_memory_is_closed_form():
    from models.bitnet.config import CONFIGS

    tiny = CONFIGS["tiny"]
    # tiny: 2 layers of 7 projections, 4 norms each, a 256 × 128 embedding and LM head
    assert tiny.total_params == (tiny.ternary_params + 2 * 4 * 128 + 2 * 256 * 128 + 128)
    total, avail = limits.machine_memory()
    assert 0 < avail <= total
