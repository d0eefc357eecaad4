"""FitHistory.plot_results: the spec's panels with matplotlib, a clear message without it."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from linncore import Dense, FitHistory, LinearTeacherDataset, Network, train_instrumented


def history(quantized: bool) -> FitHistory:
    ds = LinearTeacherDataset(64, 4, 2, seed=0)
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    pd = {"default": {"weight": "fixed<8,1>", "update": "fixed<12,1>"}} if quantized else None
    return train_instrumented(net, ds.X, ds.Y, epochs=2, batch_size=16, precision_dict=pd, reference_A=ds.A, seed=0)


@pytest.mark.parametrize("quantized", [False, True])
def test_plot_results_draws_the_five_panels(tmp_path, quantized):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    path = tmp_path / "run.png"
    fig = history(quantized).plot_results(path)
    try:
        titles = [ax.get_title() for ax in fig.axes]
        assert titles[:4] == ["loss", "update geometry", "curvature and controller", "stability margins"]
        assert titles[4] == ("rail pressure" if quantized else "rail pressure (not logged)")
        labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
        assert {"loss", "actual_update_norm", "update_cosine", "alpha_would", "stability_margin_lambda_ctrl"} <= labels
        assert ("update_underflow_fraction_max" in labels) == quantized
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        plt.close(fig)


def test_plot_results_of_a_loaded_history(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    h = history(False)
    h.save(tmp_path / "h.npz")
    fig = FitHistory.load(tmp_path / "h.npz").plot_results()
    assert len(fig.axes) == 5
    plt.close(fig)


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    h = FitHistory({"step": np.arange(2), "loss": np.array([1.0, 0.5])})
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'linncore\[plot\]'"):
        h.plot_results()
