"""FitHistory files: any metric name, NumPy metadata."""

from __future__ import annotations

import numpy as np
import pytest

from linncore import FitHistory


def test_history_metrics_may_use_any_name_and_numpy_metadata(tmp_path):
    h = FitHistory(
        {"file": np.arange(3.0), "allow_pickle": np.ones(3), "step": np.arange(3)},
        config={"lr": np.float32(0.25), "sizes": np.array([1, 2])},
        seed=np.int64(3),
    )
    h.save(tmp_path / "h.npz")
    back = FitHistory.load(tmp_path / "h.npz")
    assert sorted(back) == ["allow_pickle", "file", "step"] and back.seed == 3
    assert back.config == {"lr": 0.25, "sizes": [1, 2]}
    np.testing.assert_array_equal(back["file"], h["file"])
    with pytest.raises(TypeError, match=r"metrics\['x'\]: expected numbers"):
        FitHistory({"x": np.array([object()])})
