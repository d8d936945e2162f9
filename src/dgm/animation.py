"""Figures to scrub through: an animation as a slider with play buttons that needs no kernel.

matplotlib's ``to_jshtml`` writes every frame into the page with a small JavaScript player; the
player's buttons come from Font Awesome on a CDN, which :func:`offline_player` replaces by plain
glyphs, so the figure works on the site, offline, in the PDF's HTML source and in a notebook.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from dgm.plotting import check_sweep, draw_rate_distortion, image_grid

#: matplotlib's player draws its buttons with Font Awesome from a CDN; these glyphs need no download.
_BUTTON_GLYPHS = {
    "fa fa-minus": "&minus;",
    "fa fa-plus": "+",
    "fa fa-fast-backward": "|&lt;",
    "fa fa-step-backward": "&lt;",
    "fa fa-play fa-flip-horizontal": "&#9664;",
    "fa fa-pause": "&#8214;",
    "fa fa-play": "&#9654;",
    "fa fa-step-forward": "&gt;",
    "fa fa-fast-forward": "&gt;|",
}


def offline_player(html: str) -> str:
    """matplotlib's ``to_jshtml`` player without its Font Awesome stylesheet, buttons as plain glyphs."""
    html, n = re.subn(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">', "", html)
    if n != 1:
        raise ValueError("matplotlib's player changed: no Font Awesome stylesheet to remove")
    for cls, glyph in _BUTTON_GLYPHS.items():
        html = html.replace(f'<i class="{cls}"></i>', glyph)
    if 'class="fa' in html or "https://" in html:
        raise ValueError("matplotlib's player changed: it still loads something from the internet")
    return html


class ScrubbableFigure:
    """An animation as HTML with a slider and play buttons (matplotlib's ``to_jshtml``): no kernel needed.

    Its last frame as a PNG (``png``) is what a page without scripts shows: the PDF edition.
    """

    def __init__(self, html: str, n_frames: int, png: bytes | None = None) -> None:
        self.html, self.n_frames, self.png = html, n_frames, png

    def _repr_html_(self) -> str:
        return self.html

    def _repr_png_(self) -> bytes | None:
        return self.png


def scrubbable(
    fig: Figure, draw: Callable[[int], object], n_frames: int, interval_ms: int = 400
) -> ScrubbableFigure:
    """Frames 0 ... n_frames - 1 of ``draw(t)`` on ``fig`` as a :class:`ScrubbableFigure`; closes ``fig``."""
    from matplotlib.animation import FuncAnimation

    if n_frames < 1:
        raise ValueError(f"an animation needs at least one frame, got {n_frames}")
    anim = FuncAnimation(fig, draw, frames=n_frames, interval=interval_ms, blit=False)
    html = offline_player(anim.to_jshtml(default_mode="once"))
    draw(n_frames - 1)  # the last frame, for outputs that cannot animate
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)  # only the animation is shown
    return ScrubbableFigure(html, n_frames, buffer.getvalue())


def rate_distortion_animation(
    betas: Sequence[float],
    rates: Sequence[float],
    distortions: Sequence[float],
    samples: Sequence[np.ndarray],
):
    """The beta sweep to scrub through, one frame per beta: its point on the rate-distortion curve and its
    samples.

    ``samples[i]`` (n, C, H, W) in [0, 1] are decoded prior samples of the model trained with ``betas[i]``.
    """
    check_sweep(betas, rates, distortions)
    if len(samples) != len(betas):
        raise ValueError(f"need one set of samples per beta, got {len(samples)} for {len(betas)}")
    fig = plt.figure(figsize=(9, 4), dpi=72)
    left, right = fig.subplots(1, 2)

    def frame(i: int) -> list:
        left.clear()
        right.clear()
        draw_rate_distortion(left, betas, rates, distortions, highlight=i)
        right.imshow(image_grid(samples[i]))
        right.set(title=f"samples, beta = {betas[i]:g}", xticks=[], yticks=[])
        return []

    return scrubbable(fig, frame, len(betas), interval_ms=1200)
