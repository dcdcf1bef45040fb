"""`hwsim train bitnet` / `hwsim export bitnet`: a short real run, and bad input → one line, exit 2."""

import json

import numpy as np
import pytest

from hwsim.cli import main


def _text(tmp_path):
    p = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    words = ["def", "return", "self", "import", "class", "(", ")", ":", "\n", "    "]
    p.write_text(" ".join(words[i] for i in rng.integers(0, len(words), 3000)))
    return p


def _cfg(tmp_path, **over):
    from models.bitnet.config import BitNetConfig

    d = BitNetConfig("cli", hidden=32, ffn=64, layers=1, heads=4, kv_heads=2, vocab=256,
                     max_seq=64).to_dict()
    d.update(over)
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(d))
    return p


def test_train_then_export(tmp_path, capsys):
    out = tmp_path / "build"
    rc = main(["train", "bitnet", "--config", str(_cfg(tmp_path)), "--text",
               str(_text(tmp_path)), "--steps", "3", "--batch", "2", "--seq", "16",
               "--no-progress", "--json", "-o", str(out)])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert set(r) >= {"fp_ppl", "ternary_ppl", "ppl_ratio", "paper_ppl_ratio"}
    assert r["ppl_ratio"] == pytest.approx(r["ternary_ppl"] / r["fp_ppl"])
    for kind in ("fp", "ternary"):
        assert (out / "cli" / kind / "model.safetensors").is_file()
    rc = main(["export", "bitnet", "--checkpoint", str(out / "cli" / "ternary"), "--seq", "8",
               "--json"])
    assert rc == 0
    v = json.loads(capsys.readouterr().out)
    assert len(v["files"]) == 4 and all(row["argmax_agreement"] == 1.0 for row in v["verify"])


@pytest.mark.parametrize("case", ["heads", "binary", "corrupt", "unknown_tensor"])
def test_bad_input_exits_2(tmp_path, capsys, case):
    if case == "heads":
        argv = ["train", "bitnet", "--config", str(_cfg(tmp_path, hidden=30)), "--steps", "1"]
        want = "hidden 30 not divisible by 4 heads"
    elif case == "binary":
        p = tmp_path / "x.bin"
        p.write_bytes(bytes(range(256)) * 10)
        argv = ["train", "bitnet", "--config", str(_cfg(tmp_path)), "--text", str(p), "--seq", "16"]
        want = "is not a text file"
    else:
        import torch

        from models.bitnet.checkpoint import save_checkpoint
        from models.bitnet.config import resolve_config
        from models.bitnet.model import BitNetModel

        ck = save_checkpoint(BitNetModel(resolve_config(str(_cfg(tmp_path))), True),
                             tmp_path / "ck")
        st = ck / "model.safetensors"
        if case == "corrupt":
            st.write_bytes(st.read_bytes()[:200])
            want = "is not a readable safetensors file"
        else:
            from safetensors.torch import load_file, save_file

            state = load_file(str(st))
            state["layers.0.attn.wz.weight"] = torch.zeros(1)
            save_file(state, str(st))
            want = "unknown tensor name 'layers.0.attn.wz.weight'"
        argv = ["export", "bitnet", "--checkpoint", str(ck), "-o", str(tmp_path / "onnx")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwsim: error: ") and want in err[0]
    assert not (tmp_path / "onnx").exists() and not (tmp_path / "build").exists()


def test_text_too_short_for_windows(tmp_path, capsys):
    p = tmp_path / "small.txt"
    p.write_text("x = 1\n" * 180)  # 1080 bytes: 108 validation bytes < 128 + 1
    rc = main(["train", "bitnet", "--config", str(_cfg(tmp_path, max_seq=256)), "--text", str(p),
               "--seq", "128", "--steps", "1", "-o", str(tmp_path / "build")])
    assert rc == 2
    assert "too few for windows of 128 bytes" in capsys.readouterr().err
    assert not (tmp_path / "build").exists()
