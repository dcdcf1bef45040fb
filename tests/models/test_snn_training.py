"""Training on the digits' DVS events (slow: minutes of CPU)."""

import pytest

from models.snn.train import TrainConfig, accuracy, integer_agreement, make_dataset, train


@pytest.mark.slow
def test_training_learns_and_stays_integer_exact():
    ds = make_dataset("digits", limit=600, seed=0)
    res = train(ds, TrainConfig(epochs=4, qat_epochs=1), bits=(8, 4), log=lambda *_: None)
    chance = 1 / ds.classes
    assert accuracy(res["float"], ds.x_test, ds.y_test) > 3 * chance
    for q in res["quant"].values():
        assert accuracy(q, ds.x_test, ds.y_test) > 3 * chance
        agree = integer_agreement(q, ds.x_test)
        assert agree["equal_spike_counts"] == agree["samples"] == len(ds.y_test)
