"""FitHistory.plot_results: the spec's panels with matplotlib, a clear message without it."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from linncore import Dense, FitHistory, LinearTeacherDataset, Network, train_instrumented


def suptitle(fig):
    """The figure's title, through the public list of figure texts (it holds only the title)."""
    (title,) = fig.texts
    return title.get_text()


def history(quantized: bool) -> FitHistory:
    ds = LinearTeacherDataset(64, 4, 2, seed=0)
    net = Network([Dense((4, 2), has_bias=False, seed=0)], clip=False, dtype="float64")
    pd = {"default": {"weight": "fixed<8,1>", "update": "fixed<12,1>"}} if quantized else None
    return train_instrumented(
        net, ds.X, ds.Y, epochs=2, batch_size=16, precision_dict=pd, reference_A=ds.A, seed=0
    )


PANELS = [
    "loss",
    "update norms",
    "update direction",
    "curvature",
    "learning-rate controller",
    "stability margins",
    "Hessian extremes",
    "rail pressure",
]


@pytest.mark.parametrize("quantized", [False, True])
def test_plot_results_draws_one_quantity_per_panel(tmp_path, quantized):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    path = tmp_path / "run.png"
    fig = history(quantized).plot_results(path)
    try:
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert titles[:-1] == PANELS[:-1]
        assert titles[-1] == ("rail pressure" if quantized else "rail pressure (not logged)")
        labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
        assert {
            "loss",
            "actual_update_norm",
            "update_cosine",
            "alpha_would",
            "stability_margin_lambda_ctrl",
            "hessian_lambda_max",
        } <= labels
        assert ("update_underflow_fraction_max" in labels) == quantized
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        plt.close(fig)


def test_plot_results_names_the_run_labels_axes_and_keeps_legends_off_the_data():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    h = history(True)
    fig = h.plot_results(run="run007_seed0")
    try:
        title = suptitle(fig)
        assert title.startswith("run007_seed0: Network(4 -> 2 linear") and "quantized" in title
        assert "seed 0" in title and "controller off" in title
        for ax in fig.axes:
            assert "(" in ax.get_ylabel()  # a unit or a range on every axis
            legend = ax.get_legend()
            if legend is not None:  # anchored right of the axes, outside the data area
                assert legend.get_bbox_to_anchor().x0 >= ax.get_window_extent().x1
        assert fig.axes[-1].get_xlabel() == "optimizer step"
        assert suptitle(h.plot_results(title="mine")) == "mine"
    finally:
        plt.close("all")


def test_no_panel_mixes_a_huge_series_with_a_unit_interval_series():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    n = 40
    step = np.arange(n)
    huge = np.r_[0.0, np.full(n - 1, 4e10)]  # a curvature proxy once the updates stop
    h = FitHistory(
        {
            "step": step,
            "epoch": np.zeros(n, int),
            "loss": np.linspace(1, 0.1, n),
            "curvature_proxy": huge,
            "curvature_ema": huge / 2,
            "alpha": np.full(n, 3e-11),
            "alpha_would": np.full(n, 3e-11),
            "update_cosine": np.linspace(1, 0, n),
            "actual_update_norm": np.r_[np.geomspace(0.1, 1e-6, 10), np.zeros(n - 10)],
        }
    )
    fig = h.plot_results()
    try:
        for ax in fig.axes:
            lines = ax.get_lines()
            data = [
                np.asarray(line.get_ydata(), float)
                for line in lines
                if not line.get_label().startswith("_") and "=" not in line.get_label()
            ]
            if not data:
                continue
            top = max(np.max(np.abs(d)) for d in data)
            if top > 1e6:  # a huge series shares its axis only with series of its own kind
                assert all(line.get_label().startswith("curvature") for line in lines)
        norms = fig.axes[PANELS.index("update norms")]
        assert norms.get_yscale() == "symlog"  # the exact zeros of a silent death stay visible
        assert np.count_nonzero(norms.get_lines()[0].get_ydata() == 0) == n - 10
    finally:
        plt.close(fig)


def test_plot_results_of_a_loaded_history(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    h = history(False)
    h.save(tmp_path / "h.npz")
    fig = FitHistory.load(tmp_path / "h.npz").plot_results()
    assert len(fig.axes) == len(PANELS)
    plt.close(fig)


def test_without_matplotlib_the_error_says_how_to_install_it(monkeypatch):
    h = FitHistory({"step": np.arange(2), "loss": np.array([1.0, 0.5])})
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'linncore\[plot\]'"):
        h.plot_results()
