import numpy as np
import pytest

from hwsim.errors import HwsimError
from models.bitnet.data import batches, stdlib_corpus, text_file_corpus, validation_windows


def test_stdlib_corpus_is_deterministic_and_split_by_file():
    a = stdlib_corpus(train_bytes=200_000, val_bytes=50_000)
    b = stdlib_corpus(train_bytes=200_000, val_bytes=50_000)
    assert a.digest == b.digest and a.train.size == 200_000 and a.val.size == 50_000
    assert np.array_equal(a.train, b.train)
    # python source, not binary: printable ASCII/UTF-8 and newlines dominate
    assert bytes(a.train[:2000]).decode("utf-8", errors="strict")
    # validation files are whole other files: a 200-byte validation snippet is not in train
    snippet = bytes(a.val[10_000:10_200])
    assert snippet not in bytes(a.train)


def test_text_file_split_and_rejections(tmp_path):
    good = tmp_path / "t.txt"
    good.write_text("hello world\n" * 200)
    c = text_file_corpus(good)
    assert c.train.size + c.val.size == 2400 and c.val.size == 240
    for name, data, match in (("bin", b"\x00\x01\x02" * 600, "NUL"),
                              ("latin", "é".encode("latin-1") * 2000, "not a UTF-8 text file"),
                              ("short", b"abc", "at least")):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(HwsimError, match=match):
            text_file_corpus(p)
    with pytest.raises(HwsimError, match="cannot read"):
        text_file_corpus(tmp_path / "missing.txt")


def test_windows():
    data = np.arange(100, dtype=np.uint8)
    w = validation_windows(data, 10)
    assert w.shape == (9, 11) and np.array_equal(w[1], np.arange(10, 21))
    x, y = next(batches(data, 4, 10, np.random.default_rng(0)))
    assert x.shape == y.shape == (4, 10) and np.array_equal(x[:, 1:], y[:, :-1])
