"""fit_model before the calls it needs names them."""

from __future__ import annotations

import pytest

from linncore import Dense, LinnModel, Network


def test_fit_model_before_set_training_data_names_the_missing_calls():
    with pytest.raises(
        ValueError,
        match=r"fit_model: no training data; call set_training_data\(.*\) first, "
        r"then construct_model",
    ):
        LinnModel().fit_model(5)
    lm = LinnModel.from_network(Network([Dense((1, 1), seed=0)]))
    with pytest.raises(
        ValueError, match=r"call set_training_data\(training_inputs, training_outputs\) first$"
    ):
        lm.fit_model(5)
    lm = LinnModel()
    lm.set_training_data([[0.0], [1.0]], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="call construct_model first"):
        lm.fit_model(5)
