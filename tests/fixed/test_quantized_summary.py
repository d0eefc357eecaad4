"""QuantizedNetwork.summary() prints, as Network.summary() does."""

from __future__ import annotations

from linncore import Dense, Network, QuantizedNetwork


def test_quantized_network_summary_prints_like_network_summary(capsys):
    net = Network([Dense((2, 3), "tanh", seed=0), Dense((3, 1), seed=1)])
    assert net.summary() is None
    assert capsys.readouterr().out == net.summary_text() + "\n"
    qn = QuantizedNetwork(net)
    assert qn.summary() is None
    out = capsys.readouterr().out
    assert out == qn.summary_text() + "\n" and "dense0" in out and "ASSUMED" in out
