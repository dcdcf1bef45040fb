import json

import pytest
import torch
from safetensors.torch import save_file

from hwsim.errors import HwsimError
from models.bitnet.checkpoint import load_checkpoint, save_checkpoint
from models.bitnet.model import BitNetModel


def test_roundtrip_is_exact(tmp_path, micro):
    torch.manual_seed(3)
    m = BitNetModel(micro, True)
    save_checkpoint(m, tmp_path / "ck", {"note": 1})
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["meta.json", "model.safetensors"]
    m2, meta = load_checkpoint(tmp_path / "ck")
    assert meta["note"] == 1 and m2.quantized and m2.config == micro
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k
    tok = torch.randint(0, 256, (1, 9))
    with torch.no_grad():
        assert torch.equal(m.eval()(tok), m2(tok))


def test_bad_checkpoints(tmp_path, micro):
    m = BitNetModel(micro, True)
    ck = save_checkpoint(m, tmp_path / "ck")
    raw = (ck / "model.safetensors").read_bytes()
    (ck / "model.safetensors").write_bytes(raw[: len(raw) // 2])       # truncated
    with pytest.raises(HwsimError, match="not a readable safetensors file"):
        load_checkpoint(ck)
    (ck / "model.safetensors").write_bytes(b"\x07" * 64)               # garbage
    with pytest.raises(HwsimError, match="not a readable safetensors file"):
        load_checkpoint(ck)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    state["layers.0.attn.bogus.weight"] = torch.zeros(2)
    save_file(state, str(ck / "model.safetensors"))
    with pytest.raises(HwsimError, match=r"unknown tensor name 'layers\.0\.attn\.bogus\.weight'"):
        load_checkpoint(ck)
    del state["layers.0.attn.bogus.weight"]
    state["embed.weight"] = torch.zeros(3, 3)
    save_file(state, str(ck / "model.safetensors"))
    with pytest.raises(HwsimError, match="has shape"):
        load_checkpoint(ck)
    (ck / "meta.json").write_text("{not json")
    with pytest.raises(HwsimError, match="not valid JSON"):
        load_checkpoint(ck)
    meta = {"format": "hwsim-bitnet-1", "config": {**micro.to_dict(), "hidden": 30}}
    (ck / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(HwsimError, match="not divisible"):
        load_checkpoint(ck)


def test_failed_save_leaves_nothing(tmp_path, micro, monkeypatch):
    import models.bitnet.checkpoint as ckmod

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckmod, "save_file", boom)
    with pytest.raises(OSError):
        save_checkpoint(BitNetModel(micro, True), tmp_path / "ck")
    assert list(tmp_path.iterdir()) == []
