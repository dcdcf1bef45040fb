"""Bad input, tried as a careless or hostile user would: does every one get one clear line?

:data:`CASES` is the one catalogue of bad inputs (``tests/cli/test_fuzz.py`` runs the same
list). Each case runs ``python -m hwsim.cli …`` in a fresh folder, in its own process group,
under a wall-clock timeout and an address-space limit, and is classified:

- ``clean``: exit status 2, exactly one stderr line starting ``hwsim: error:``, no traceback and
  nothing new in the folder (no output, no ``.staging`` folder) — or, for the few cases whose
  input is legal (``expect="ok"``), exit 0 and no staging folder left;
- ``traceback``: a Python traceback on stderr;
- ``silent_accept``: exit 0 on bad input;
- ``hang``: still running at the timeout (killed);
- ``leftover``: one clean line, but files or staging folders left behind;
- ``unclean``: anything else (another exit status, several lines, killed by a signal).

"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

NAME = "robustness"
DESCRIPTION = ("bad inputs across the CLI (sizes, output folders, checkpoints and run folders, "
               "ONNX, sweeps, leftovers, argparse), each in a subprocess with a timeout and a "
               "memory limit: tried / clean / tracebacks / silent accepts / hangs / leftovers")

OUTCOMES = ("clean", "traceback", "silent_accept", "hang", "leftover", "unclean")
CATEGORIES = ("size", "output", "checkpoint", "onnx", "sweep", "leftovers", "argparse", "files")


@dataclass(frozen=True)
class Case:
    """One bad input: ``argv`` after ``hwsim``, run in a folder that ``setup`` filled."""

    name: str
    category: str
    argv: tuple[str, ...]
    setup: tuple[str, ...] = ()      # fixture names (see _FIXTURES), written before the run
    timeout: float = 30.0
    expect: str = "error"            # "error": one line, exit 2; "ok": exit 0, no staging left
    slow: bool = False               # only with --all (bench) / -m slow (tests)


# ---- fixtures: hostile files, written with the libraries' own writers ---------------------
def _onnx_model(tmp: Path, name: str, nodes, inits, inputs=None, outputs=None, domains=()):
    from onnx import TensorProto, helper

    ins = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])]
    outs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])]
    g = helper.make_graph(nodes, "g", ins, outs, inits)
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    m = helper.make_model(g, opset_imports=opsets)
    m.ir_version = 8
    (tmp / name).write_bytes(m.SerializeToString())


def _w(values=None, name="w", dtype="float32"):
    import numpy as np
    from onnx import numpy_helper

    a = np.array(values if values is not None else np.eye(4), dtype=dtype)
    return numpy_helper.from_array(a, name)


def _mm(extra=()):
    from onnx import helper

    return [helper.make_node("MatMul", ["x", "w"], ["h" if extra else "y"], name="proj"),
            *extra]


def _fx_onnx(tmp: Path, kind: str) -> None:
    import numpy as np
    from onnx import TensorProto, helper

    if kind == "garbage":
        (tmp / "m.onnx").write_bytes(bytes(range(256)) * 7)
    elif kind == "empty":
        (tmp / "m.onnx").write_bytes(b"")
    elif kind == "truncated":
        _onnx_model(tmp, "full.onnx", _mm(), [_w()])
        data = (tmp / "full.onnx").read_bytes()
        (tmp / "full.onnx").unlink()
        (tmp / "m.onnx").write_bytes(data[: len(data) // 2])
    elif kind == "custom_domain":
        _onnx_model(tmp, "m.onnx", _mm([helper.make_node("Frobnicate", ["h"], ["y"],
                                                         domain="evil.ops", name="f")]),
                    [_w()], domains=("evil.ops",))
    elif kind == "unknown_op":
        _onnx_model(tmp, "m.onnx", _mm([helper.make_node("Frobnicate", ["h"], ["y"])]), [_w()])
    elif kind == "unpriced_op":  # a standard op with real compute the estimator does not price
        x4 = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])]
        _onnx_model(tmp, "m.onnx", [helper.make_node("Conv", ["x", "k"], ["y"], name="conv")],
                    [_w(np.ones((1, 1, 3, 3)), "k")], inputs=x4,
                    outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                           [1, 1, 2, 2])])
    elif kind == "nan":
        _onnx_model(tmp, "m.onnx", _mm(), [_w(np.full((4, 4), np.nan))])
    elif kind == "inf":
        _onnx_model(tmp, "m.onnx", _mm(), [_w(np.full((4, 4), np.inf))])
    elif kind == "raw_size":
        t = _w()
        t.raw_data = t.raw_data[:-4]  # 15 floats for a 4 × 4 weight
        _onnx_model(tmp, "m.onnx", _mm(), [t])
    elif kind == "bad_dtype":
        t = _w()
        t.data_type = 999
        _onnx_model(tmp, "m.onnx", _mm(), [t])
    elif kind == "string_weight":
        t = helper.make_tensor("w", TensorProto.STRING, [4, 4], [b"a"] * 16)
        _onnx_model(tmp, "m.onnx", _mm(), [t])
    elif kind == "no_weight":  # activation × activation only
        ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4, 4]) for n in "xw"]
        _onnx_model(tmp, "m.onnx", [helper.make_node("MatMul", ["x", "w"], ["y"])], [],
                    inputs=ins, outputs=[helper.make_tensor_value_info(
                        "y", TensorProto.FLOAT, [4, 4])])
    elif kind == "external":
        t = _w()
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "../../../../etc/passwd"), ("length", "64")):
            e = t.external_data.add()
            e.key, e.value = k, v
        _onnx_model(tmp, "m.onnx", _mm(), [t])
    elif kind == "dangling":  # a node reads a tensor that nothing produces: onnx.checker
        _onnx_model(tmp, "m.onnx", [helper.make_node("MatMul", ["x", "nowhere"], ["y"])],
                    [])
    else:  # pragma: no cover
        raise KeyError(kind)


def _fx_snn(tmp: Path, kind: str) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    shape = {"side": 48, "channels": 4, "kernel": 5, "stride": 6, "hidden": 512, "classes": 10}
    info = {"kind": "float", "shape": shape, "data": {"images": "digits", "limit": 200}}
    conv = (shape["side"] - shape["kernel"]) // shape["stride"] + 1
    tensors = {"conv.weight": np.zeros((4, 1, 5, 5), np.float32),
               "conv.bias": np.zeros(4, np.float32),
               "fc1.weight": np.zeros((512, 4 * conv * conv), np.float32),
               "fc1.bias": np.zeros(512, np.float32),
               "fc2.weight": np.zeros((10, 512), np.float32),
               "fc2.bias": np.zeros(10, np.float32)}
    if kind == "garbage":
        (tmp / "c.safetensors").write_bytes(b"\xff" * 100)
        return
    if kind == "no_tensors":
        tensors = {"unrelated": np.zeros(1, np.float32)}
    elif kind == "nan":
        tensors = {k: np.full_like(v, np.nan) for k, v in tensors.items()}
    elif kind == "bad_shape_meta":
        info["shape"] = {"side": "big"}
    elif kind == "bad_kind":
        info["kind"] = "quant"  # quant without weight_bits / mem_bits
    elif kind == "meta_not_json":
        save_file(tensors, str(tmp / "c.safetensors"), metadata={"hwsim_snn": "{nope"})
        return
    save_file(tensors, str(tmp / "c.safetensors"), metadata={"hwsim_snn": json.dumps(info)})


def _fx_run_folder(tmp: Path, kind: str) -> None:
    run = tmp / "run"
    run.mkdir()
    if kind == "bad_json":
        (run / "run.json").write_text("{not json")
    elif kind == "wrong_types":
        (run / "run.json").write_text(json.dumps({"config": "seven", "geometry": [1, 2],
                                                  "task": 3}))
    elif kind == "empty_meta":
        (run / "run.json").write_text("{}")
    (run / "float.safetensors").write_bytes(b"\x00" * 16)


def _fx_files(tmp: Path, kind: str) -> None:
    import numpy as np

    if kind == "afile":
        (tmp / "afile").write_text("x")
    elif kind == "symlink":
        (tmp / "real").mkdir()
        (tmp / "link").symlink_to(tmp / "real", target_is_directory=True)
    elif kind == "bad_json":
        (tmp / "config.json").write_text('{"hidden": 64, "layers": ')
    elif kind == "json_list":
        (tmp / "config.json").write_text("[1, 2, 3]")
    elif kind == "huge_layers":
        (tmp / "config.json").write_text(json.dumps(
            {"name": "huge", "hidden": 64, "layers": 10**9, "heads": 2, "kv_heads": 2,
             "ffn": 128, "vocab": 256, "max_seq": 128}))
    elif kind == "bad_yaml":
        (tmp / "arch.yaml").write_text("kind: [asic\n  : : :\n\t- broken")
    elif kind == "binary_yaml":
        (tmp / "arch.yaml").write_bytes(b"\x00\xff\xfe" * 10)
    elif kind == "yaml_list":
        (tmp / "arch.yaml").write_text("- 1\n- 2\n")
    elif kind == "bad_npz":
        (tmp / "imgs.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    elif kind == "npz_1d":
        np.savez(tmp / "imgs.npz", images=np.zeros(10))
    elif kind == "npz_pickle":  # an object array: would need allow_pickle, must be refused
        np.save(tmp / "imgs.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "bad_csv":
        (tmp / "imgs.csv").write_text("label,pixel1\nx,y\n")
    elif kind == "binary_csv":
        (tmp / "imgs.csv").write_bytes(b"\xff\xfe\x00,\x01\n" * 10)
    elif kind == "binary_text":
        (tmp / "text.txt").write_bytes(b"\xff\xfe\x00" * 100)
    elif kind == "stale_staging":
        (tmp / ".emit.staging-stale1").mkdir()
        (tmp / ".emit.staging-stale1" / "half.v").write_text("module")
    elif kind == "sweep_dir":
        (tmp / "sw" / "points").mkdir(parents=True)
        (tmp / "sw" / "points" / "0123abcd.json").write_text("{broken")
    else:  # pragma: no cover
        raise KeyError(kind)


def _fixture(name: str) -> Callable[[Path], None]:
    group, _, kind = name.partition(":")
    fn = {"onnx": _fx_onnx, "snn": _fx_snn, "run": _fx_run_folder, "file": _fx_files}[group]
    return lambda tmp: fn(tmp, kind)


# ---- the catalogue -------------------------------------------------------------------------
def _output_cases() -> list[Case]:
    """Every writing command with an unusable output path (parse time: nothing else runs)."""
    cmds = {
        "rtl-emit": ("rtl", "emit", "ternary-mvu", "-o"),
        "events-convert": ("events", "convert", "digits", "-o"),
        "estimate-sweep": ("estimate", "bitnet-tiny", "--target", "vitallm", "--sweep",
                           "lanes=8,16", "--out"),
        "sweep": ("sweep", "bitnet", "-o"),
        "train-bitnet": ("train", "bitnet", "-o"),
        "train-snn": ("train", "snn", "-o"),
        "train-airfm": ("train", "airfm", "-o"),
        "train-swiftchannel": ("train", "swiftchannel", "-o"),
        "export-bitnet": ("export", "bitnet", "-o"),
        "run": ("run", "ternary-mvu", "-o"),
        "fpga-build": ("fpga", "build", "ternary-mvu", "-o"),
        "sim": ("sim", "ternary-mvu", "-o"),
        "airfm-eval": ("airfm", "eval", "run", "-o"),
        "swiftchannel-eval": ("swiftchannel", "eval", "run", "-o"),
        "bench-ternary-mvu": ("bench", "ternary-mvu", "--no-synth", "--out"),
    }
    bad = {"file": ("afile", ("file:afile",)), "under-file": ("afile/sub", ("file:afile",)),
           "device": ("/dev/null", ()), "proc": ("/proc/hwsim-out", ()),
           "symlink": ("link", ("file:symlink",))}
    out = []
    for cname, argv in cmds.items():
        for bname, (path, setup) in bad.items():
            if cname == "events-convert":
                path = {"file": "afile/x.npz", "under-file": "afile/sub/x.npz",
                        "symlink": "link"}.get(bname, path)
            # the default run tries every kind on `rtl emit`, three kinds on the others
            slow = cname != "rtl-emit" and bname in ("under-file", "proc")
            out.append(Case(f"output/{cname}/{bname}", "output", (*argv, path), setup,
                            slow=slow))
    out.append(Case("output/rtl-emit/empty", "output", ("rtl", "emit", "ternary-mvu", "-o", "")))
    out.append(Case("output/snn-eval-onnx/device", "output",
                    ("snn", "eval", "c.safetensors", "--onnx", "/dev/null"), ("snn:nan",)))
    return out


def _onnx_cases() -> list[Case]:
    kinds = ("garbage", "empty", "truncated", "custom_domain", "unknown_op", "unpriced_op",
             "nan", "inf", "raw_size", "bad_dtype", "string_weight", "no_weight", "external",
             "dangling")
    out = [Case(f"onnx/estimate/{k}", "onnx", ("estimate", "m.onnx", "--target", "vitallm"),
                (f"onnx:{k}",)) for k in kinds]
    out += [Case(f"onnx/estimate-sweep/{k}", "onnx",
                 ("estimate", "m.onnx", "--target", "vitallm", "--sweep", "lanes=8,16",
                  "--out", "sw"), (f"onnx:{k}",)) for k in ("custom_domain", "nan")]
    out.append(Case("onnx/estimate/missing", "onnx",
                    ("estimate", "nothere.onnx", "--target", "vitallm")))
    return out


def _size_cases() -> list[Case]:
    s = "size"
    return [
        Case("size/rtl-emit-rows-1e8", s, ("rtl", "emit", "ternary-mvu", "--rows", "100000000",
                                           "-o", "out"), timeout=15),
        Case("size/estimate-context-1e12", s, ("estimate", "bitnet-3b", "--target", "vitallm",
                                               "--context", "1000000000000"),
             timeout=15),
        Case("size/estimate-sweep-810k", s,
             ("estimate", "bitnet-tiny", "--target", "vitallm", "--sweep",
              "lanes=" + ",".join(str(i) for i in range(1, 91)),
              "tiles=" + ",".join(str(i) for i in range(1, 91)),
              "clock_mhz=" + ",".join(str(100 + i) for i in range(100)), "--out", "sw"), timeout=15),
        Case("size/train-bitnet-layers-1e9", s, ("train", "bitnet", "--config", "config.json",
                                                 "--steps", "1", "-o", "out"),
             ("file:huge_layers",), timeout=15),
        Case("size/export-bitnet-layers-1e9", s, ("export", "bitnet", "--checkpoint", ".",
                                                  "-o", "out"), ("file:huge_layers",),
             timeout=30),
        Case("size/sim-4096-one-lane", s, ("sim", "ternary-mvu", "--rows", "4096", "--cols",
                                           "4096", "--lanes", "1", "-o", "out"), timeout=15),
        Case("size/fpga-4096-on-ecp5-12f", s, ("fpga", "build", "ternary-mvu", "--rows", "4096",
                                               "--cols", "4096", "--target", "ecp5-ulx3s-12f",
                                               "-o", "out"), timeout=15),
    ]


def _checkpoint_cases() -> list[Case]:
    c = "checkpoint"
    out = [Case(f"checkpoint/snn-eval/{k}", c, ("snn", "eval", "c.safetensors", "--limit", "40"),
                (f"snn:{k}",),
                timeout=60)
           for k in ("garbage", "no_tensors", "nan", "bad_shape_meta", "bad_kind",
                     "meta_not_json")]
    for model in ("airfm", "swiftchannel"):
        out += [Case(f"checkpoint/{model}-eval/{k}", c, (model, "eval", "run", "--test", "2"),
                     (f"run:{k}",), timeout=60)
                for k in ("bad_json", "wrong_types", "empty_meta")]
    out.append(Case("checkpoint/export-bitnet/missing", c,
                    ("export", "bitnet", "--checkpoint", "nothere", "-o", "out"), timeout=60))
    return out


def _sweep_cases() -> list[Case]:
    s = "sweep"
    return [
        Case("sweep/empty-weights", s, ("sweep", "bitnet", "--weights", "", "-o", "out"), timeout=15),
        Case("sweep/unknown-model", s, ("sweep", "nomodel", "-o", "out")),
        Case("sweep/bad-weights", s, ("sweep", "bitnet", "--weights", "2,x", "-o", "out")),
        Case("sweep/zero-bits", s, ("sweep", "bitnet", "--weights", "0", "-o", "out")),
        Case("sweep/unreachable-dask", s, ("sweep", "bitnet", "--weights", "2", "--acts", "8",
                                           "--dask", "tcp://192.0.2.1:8786", "-o", "out"), timeout=15),
        Case("sweep/corrupt-point", s, ("sweep", "bitnet", "--weights", "2", "--acts", "8",
                                          "-o", "sw"), ("file:sweep_dir",),
             timeout=20),
        Case("sweep/estimate-bad-key", s, ("estimate", "bitnet-tiny", "--target", "vitallm",
                                           "--sweep", "nokey=1,2", "--out", "sw")),
        Case("sweep/estimate-bad-value", s, ("estimate", "bitnet-tiny", "--target", "vitallm",
                                             "--sweep", "lanes=a,b", "--out", "sw")),
    ]


def _leftover_cases() -> list[Case]:
    return [
        Case("leftovers/stale-staging-cleaned", "leftovers",
             ("rtl", "emit", "ternary-mvu", "--rows", "4", "--cols", "4", "--lanes", "4",
              "-o", "emit"), ("file:stale_staging",),
             expect="ok"),
        Case("leftovers/failed-emit-params", "leftovers",
             ("rtl", "emit", "ternary-mvu", "--rows", "4", "--cols", "5", "--lanes", "4",
              "-o", "emit")),
        Case("leftovers/events-bad-size", "leftovers",
             ("events", "convert", "digits", "--limit", "2", "--size", "8", "--canvas", "4",
              "-o", "ev.npz")),
    ]


def _argparse_cases() -> list[Case]:
    a = "argparse"
    return [
        Case("argparse/no-command", a, ()),
        Case("argparse/unknown-command", a, ("frobnicate",)),
        Case("argparse/unknown-option", a, ("estimate", "bitnet-3b", "--target", "vitallm",
                                            "--frob")),
        Case("argparse/missing-required", a, ("rtl", "emit", "ternary-mvu")),
        Case("argparse/non-numeric", a, ("rtl", "emit", "ternary-mvu", "--rows", "many",
                                         "-o", "out")),
        Case("argparse/bad-choice", a, ("sim", "ternary-mvu", "--sim", "modelsim")),
        Case("argparse/zero-positive", a, ("estimate", "bitnet-3b", "--target", "vitallm",
                                           "--prompt", "0")),
        Case("argparse/negative-positive", a, ("train", "bitnet", "--steps", "-3")),
        Case("argparse/vivado-no-vivado", a, ("fpga", "build", "ternary-mvu", "--target",
                                              "zcu111", "--vivado", "--no-vivado", "-o", "out")),
        Case("argparse/validate-and-sweep", a, ("estimate", "bitnet-3b", "--target", "vitallm",
                                                "--validate", "--sweep", "lanes=8,16")),
        Case("argparse/unknown-kernel", a, ("rtl", "emit", "no-such-kernel", "-o", "out")),
        Case("argparse/unknown-bench", a, ("bench", "no-such-bench")),
        Case("argparse/float-for-int", a, ("estimate", "bitnet-3b", "--target", "vitallm",
                                           "--context", "1e12")),
        Case("argparse/negative-seed", a, ("sim", "ternary-mvu", "--rows", "4", "--cols", "4",
                                           "--lanes", "4", "--seed", "-1", "-o", "out")),
        Case("argparse/negative-seed-events", a, ("events", "convert", "digits", "--limit", "2",
                                                  "--seed", "-1", "-o", "e.npz")),
        Case("argparse/unknown-target", a, ("estimate", "bitnet-3b", "--target", "nochip")),
        Case("argparse/unknown-model", a, ("estimate", "gpt-9", "--target", "vitallm")),
        Case("argparse/unknown-flow", a, ("run", "nomodel", "-o", "out")),
        Case("argparse/fpga-unknown-target", a, ("fpga", "build", "ternary-mvu", "--target",
                                                 "ice40", "-o", "out")),
    ]


def _file_cases() -> list[Case]:
    f = "files"
    return [
        Case("files/config-bad-json", f, ("train", "bitnet", "--config", "config.json",
                                          "-o", "out"), ("file:bad_json",)),
        Case("files/config-json-list", f, ("train", "bitnet", "--config", "config.json",
                                           "-o", "out"), ("file:json_list",)),
        Case("files/arch-bad-yaml", f, ("estimate", "bitnet-3b", "--target", "arch.yaml"),
             ("file:bad_yaml",)),
        Case("files/arch-yaml-list", f, ("estimate", "bitnet-3b", "--target", "arch.yaml"),
             ("file:yaml_list",)),
        Case("files/arch-binary-yaml", f, ("estimate", "bitnet-3b", "--target", "arch.yaml"),
             ("file:binary_yaml",)),
        Case("files/arch-missing-yaml", f, ("estimate", "bitnet-3b", "--target", "no.yaml")),
        Case("files/events-bad-npz", f, ("events", "convert", "imgs.npz", "-o", "ev.npz"),
             ("file:bad_npz",)),
        Case("files/events-npz-1d", f, ("events", "convert", "imgs.npz", "-o", "ev.npz"),
             ("file:npz_1d",)),
        Case("files/events-npy-pickle", f, ("events", "convert", "imgs.npy", "-o", "ev.npz"),
             ("file:npz_pickle",)),
        Case("files/events-bad-csv", f, ("events", "convert", "imgs.csv", "-o", "ev.npz"),
             ("file:bad_csv",)),
        Case("files/events-binary-csv", f, ("events", "convert", "imgs.csv", "-o", "ev.npz"),
             ("file:binary_csv",)),
        Case("files/events-missing", f, ("events", "convert", "none.npz", "-o", "ev.npz")),
        Case("files/train-text-binary", f, ("train", "bitnet", "--text", "text.txt",
                                            "--steps", "1", "-o", "out"),
             ("file:binary_text",), timeout=60),
        Case("files/train-text-missing", f, ("train", "bitnet", "--text", "none.txt",
                                             "-o", "out")),
    ]


CASES: tuple[Case, ...] = tuple(
    _output_cases() + _onnx_cases() + _size_cases() + _checkpoint_cases() + _sweep_cases()
    + _leftover_cases() + _argparse_cases() + _file_cases())


# ---- running one case ----------------------------------------------------------------------
def _tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for n in dirnames + filenames:
            out.add(os.path.normpath(os.path.join(rel, n)))
    return out


def _limit(mem_bytes: int):
    def apply():
        import resource

        # RLIMIT_DATA, not RLIMIT_AS: wasmtime (Amaranth's yosys) reserves address
        # space it never touches; every heap allocation still counts
        resource.setrlimit(resource.RLIMIT_DATA, (mem_bytes, mem_bytes))
    return apply


def run_case(case: Case, workdir: Path, mem_bytes: int = 4_000_000_000,
             timeout: float | None = None) -> dict:
    """Run ``case`` in ``workdir`` (an empty folder); return its row with ``outcome``."""
    import hwsim

    workdir = Path(workdir)
    for fx in case.setup:
        _fixture(fx)(workdir)
    before = _tree(workdir)
    root = str(Path(hwsim.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [root, *filter(None, [os.environ.get("PYTHONPATH")])]),
        "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    limit = timeout or case.timeout
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "hwsim.cli", *case.argv], cwd=workdir,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_limit(mem_bytes))
    try:
        _, err = proc.communicate(timeout=limit)
        hung = False
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        hung = True
    with contextlib.suppress(ProcessLookupError):  # workers a command left behind
        os.killpg(proc.pid, signal.SIGKILL)
    seconds = time.perf_counter() - t0
    err_text = err.decode(errors="replace")
    lines = [ln for ln in err_text.splitlines() if ln.strip()]
    new = sorted(_tree(workdir) - before)
    staging = sorted(p for p in _tree(workdir) if ".staging-" in p)
    if hung:
        outcome = "hang"
    elif "Traceback (most recent call last)" in err_text:
        outcome = "traceback"
    elif case.expect == "ok":
        outcome = ("leftover" if staging else "clean") if proc.returncode == 0 else "unclean"
    elif proc.returncode == 0:
        outcome = "silent_accept"
    elif proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("hwsim: error:"):
        outcome = "leftover" if new else "clean"
    else:
        outcome = "unclean"
    return {"name": case.name, "category": case.category,
            "outcome": outcome, "exit": proc.returncode, "seconds": round(seconds, 2),
            "stderr": (lines[-1] if lines else "")[:240], "stderr_lines": len(lines),
            "left": (staging if case.expect == "ok" else new)[:5],
            "argv": list(case.argv)}


def summarize(rows: list[dict]) -> dict:
    counts = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
    return {"tried": len(rows), "clean": counts["clean"], "tracebacks": counts["traceback"],
            "silent_accepts": counts["silent_accept"], "hangs": counts["hang"],
            "leftovers": counts["leftover"], "unclean": counts["unclean"]}


# ---- the bench -----------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--all", action="store_true",
                   help="also the slow cases (simulation, synthesis, Dask; each up to its timeout)")
    p.add_argument("--category", action="append", choices=CATEGORIES, default=None,
                   help="only these categories (repeatable)")
    p.add_argument("--mem-gb", type=float, default=4.0, help="address-space limit per case")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per case (default: each case's own, 20–60 s)")


def run(args) -> dict:
    from hwsim.errors import HwsimError

    if not 0.5 <= args.mem_gb <= 64:
        raise HwsimError(f"--mem-gb must be 0.5 … 64, not {args.mem_gb:g}")
    if args.timeout is not None and not 1 <= args.timeout <= 600:
        raise HwsimError(f"--timeout must be 1 … 600 s, not {args.timeout:g}")
    cases = [c for c in CASES if (args.all or not c.slow)
             and (not args.category or c.category in args.category)]
    rows = []
    t0 = time.perf_counter()
    for c in cases:
        with tempfile.TemporaryDirectory(prefix="hwsim-robust-") as tmp:
            rows.append(run_case(c, Path(tmp), int(args.mem_gb * 1e9), args.timeout))
    by_cat = {cat: summarize([r for r in rows if r["category"] == cat])
              for cat in CATEGORIES if any(r["category"] == cat for r in rows)}
    failing: dict[str, list[str]] = {}
    for r in rows:
        if r["outcome"] != "clean":
            failing.setdefault(r["category"], []).append(r["name"])
    return {**summarize(rows), "seconds": round(time.perf_counter() - t0, 1),
            "by_category": by_cat, "not_clean_by_category": failing, "cases": rows}


def table(r: dict) -> str:
    keys = ("tried", "clean", "tracebacks", "silent_accepts", "hangs", "leftovers", "unclean")
    lines = [f"{'category':<12} " + " ".join(f"{k:>14}" for k in keys)]
    for cat, s in r["by_category"].items():
        lines.append(f"{cat:<12} " + " ".join(f"{s[k]:>14}" for k in keys))
    lines.append(f"{'all':<12} " + " ".join(f"{r[k]:>14}" for k in keys))
    lines.append("")
    for c in r["cases"]:
        if c["outcome"] != "clean":
            lines.append(f"{c['outcome']:<13} {c['name']:<44} "
                         f"{c['stderr'][:90]}")
    lines.append(f"({r['seconds']:.0f} s)")
    return "\n".join(lines)
