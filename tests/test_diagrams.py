"""dgm.diagrams: the book's diagrams, drawn from code."""

from __future__ import annotations

import math

import matplotlib
import pytest
from matplotlib.patches import FancyArrowPatch

from dgm import diagrams
from dgm.diagrams import Node, border

matplotlib.use("Agg")


def _texts(fig) -> set[str]:
    return {t.get_text() for ax in fig.axes for t in ax.texts} | {ax.get_title() for ax in fig.axes}


def _arrows(fig) -> int:
    return sum(isinstance(p, FancyArrowPatch) for ax in fig.axes for p in ax.patches)


def test_the_vae_diagram_shows_encoder_noise_decoder_and_both_loss_terms():
    fig = diagrams.vae_diagram()
    texts = " ".join(_texts(fig))
    for part in ("encoder", "decoder", "\\varepsilon \\sim N(0, I)", "KL to $p(z) = N(0, I)$", "-\\log p(x"):
        assert part in texts, part
    assert _arrows(fig) == 8


@pytest.mark.parametrize("kind, arrows, observed", [("gmm", 3, "$x_i$"), ("vae", 2, "$x_i$")])
def test_graphical_models(kind, arrows, observed):
    fig = diagrams.graphical_model(kind)
    assert _arrows(fig) == arrows and observed in _texts(fig)
    assert any("i = 1, \\dots, n" in t for t in _texts(fig))  # the plate


def test_estimator_graphs_has_two_panels():
    fig = diagrams.estimator_graphs()
    assert len(fig.axes) == 2 and _arrows(fig) == 5 + 3
    assert any("no gradient" in t for t in _texts(fig))


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="'gmm' or 'vae'"):
        diagrams.graphical_model("hmm")
    fig, axes = diagrams.new_figure()
    with pytest.raises(ValueError, match="do not exist"):
        diagrams.draw(axes[0, 0], {"a": Node("a", 0, 0)}, [("a", "b", "")], "t")
    with pytest.raises(ValueError, match="no direction"):
        border(Node("a", 0, 0), 0, 0)


def test_arrows_start_on_the_border_of_circles_and_boxes():
    x, y = border(Node("c", 1.0, 2.0, round=True), 3.0, 4.0)
    assert math.hypot(x - 1.0, y - 2.0) == pytest.approx(diagrams.RADIUS)
    assert (x - 1.0) / (y - 2.0) == pytest.approx(3 / 4)
    box = Node("b", 0.0, 0.0, width=2.0)
    assert border(box, 1.0, 0.0) == pytest.approx((1.0 + diagrams.PAD, 0.0))
    assert border(box, 0.0, -1.0) == pytest.approx((0.0, -(diagrams.HALF_HEIGHT + diagrams.PAD)))
