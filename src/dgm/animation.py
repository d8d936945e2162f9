"""Figures to scrub through: an animation as a slider with play buttons that needs no kernel.

matplotlib's ``to_jshtml`` writes every frame into the page with a small JavaScript player; the
player's buttons come from Font Awesome on a CDN, which :func:`offline_player` replaces by plain
glyphs, so the figure works on the site, offline, in the PDF's HTML source and in a notebook.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

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
    """An animation as HTML with a slider and play buttons (matplotlib's ``to_jshtml``): no kernel needed."""

    def __init__(self, html: str, n_frames: int) -> None:
        self.html, self.n_frames = html, n_frames

    def _repr_html_(self) -> str:
        return self.html


def scrubbable(
    fig: Figure, draw: Callable[[int], object], n_frames: int, interval_ms: int = 400
) -> ScrubbableFigure:
    """Frames 0 ... n_frames - 1 of ``draw(t)`` on ``fig`` as a :class:`ScrubbableFigure`; closes ``fig``."""
    from matplotlib.animation import FuncAnimation

    if n_frames < 1:
        raise ValueError(f"an animation needs at least one frame, got {n_frames}")
    anim = FuncAnimation(fig, draw, frames=n_frames, interval=interval_ms, blit=False)
    html = offline_player(anim.to_jshtml(default_mode="once"))
    plt.close(fig)  # only the animation is shown
    return ScrubbableFigure(html, n_frames)
