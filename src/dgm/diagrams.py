"""Diagrams of the book, drawn from code: the VAE, two graphical models, the two gradient estimators.

Each function returns a figure of labelled boxes and circles joined by arrows, built with
:func:`dgm.plotting.new_figure`, so the diagrams live as text in the repository, render the same
on the site and in the notebooks, and show themselves once in a notebook cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from dgm.plotting import new_figure, show


@dataclass(frozen=True)
class Node:
    """A labelled box (a circle if ``round``; grey if ``observed``) centred at (x, y)."""

    label: str
    x: float
    y: float
    round: bool = False
    observed: bool = False
    width: float = 1.6


Edge = tuple[str, str, str]  # (from, to, label)
RADIUS, HALF_HEIGHT, PAD = 0.4, 0.35, 0.05
Plate = tuple[tuple[str, ...], str]  # (members, label)


def border(node: Node, dx: float, dy: float) -> tuple[float, float]:
    """Where the ray from ``node``'s centre in direction (dx, dy) leaves its circle or box."""
    norm = (dx * dx + dy * dy) ** 0.5
    if norm == 0:
        raise ValueError(f"an arrow from {node.label!r} to itself has no direction")
    ux, uy = dx / norm, dy / norm
    if node.round:
        t = RADIUS
    else:
        hw, hh = node.width / 2 + PAD, HALF_HEIGHT + PAD
        t = min(hw / abs(ux) if ux else float("inf"), hh / abs(uy) if uy else float("inf"))
    return node.x + t * ux, node.y + t * uy


def draw(ax, nodes: dict[str, Node], edges: list[Edge], title: str, plates: tuple[Plate, ...] = ()) -> None:
    """Draw ``nodes``, arrows between them and plates around groups of them on ``ax``."""
    missing = {n for a, b, _ in edges for n in (a, b)} - set(nodes)
    if missing:
        raise ValueError(f"edges name nodes that do not exist: {sorted(missing)}")
    ax.set_title(title, fontsize=10)
    ax.set_aspect("equal")
    ax.axis("off")
    for n in nodes.values():
        face = "0.85" if n.observed else "white"
        if n.round:
            ax.add_patch(Circle((n.x, n.y), RADIUS, facecolor=face, edgecolor="black", zorder=2))
        else:
            ax.add_patch(
                FancyBboxPatch(
                    (n.x - n.width / 2, n.y - HALF_HEIGHT),
                    n.width,
                    2 * HALF_HEIGHT,
                    boxstyle=f"round,pad={PAD}",
                    facecolor=face,
                    edgecolor="black",
                    zorder=2,
                )
            )
        ax.text(n.x, n.y, n.label, ha="center", va="center", fontsize=9, zorder=3)
    for a, b, label in edges:
        dx, dy = nodes[b].x - nodes[a].x, nodes[b].y - nodes[a].y
        (xa, ya), (xb, yb) = border(nodes[a], dx, dy), border(nodes[b], -dx, -dy)
        ax.add_patch(
            FancyArrowPatch(
                (xa, ya),
                (xb, yb),
                arrowstyle="-|>",
                mutation_scale=12,
                shrinkA=0,
                shrinkB=0,
                color="black",
                zorder=3,
            )
        )
        if label and abs(dx) < 1e-9:  # a vertical arrow: the label beside it
            ax.text(xa + 0.12, (ya + yb) / 2, label, ha="left", va="center", fontsize=8, color="0.3")
        elif label:
            ax.text(
                (xa + xb) / 2, (ya + yb) / 2 + 0.15, label, ha="center", va="bottom", fontsize=8, color="0.3"
            )
    for members, label in plates:
        xs, ys = [nodes[m].x for m in members], [nodes[m].y for m in members]
        x0, x1, y0, y1 = min(xs) - 0.7, max(xs) + 0.7, min(ys) - 0.7, max(ys) + 0.7
        ax.add_patch(
            FancyBboxPatch(
                (x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0.02", fill=False, edgecolor="0.4", zorder=0
            )
        )
        ax.text(x1 - 0.1, y0 + 0.1, label, ha="right", va="bottom", fontsize=8, color="0.4")
    xs, ys = [n.x for n in nodes.values()], [n.y for n in nodes.values()]
    ax.set_xlim(min(xs) - 1.5, max(xs) + 1.5)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 1.0)


def vae_diagram() -> Figure:
    """The VAE: x -> encoder -> (mu_z, log sigma_z) -> z = mu + sigma * eps -> decoder
    -> (mu_x, log sigma_x)."""
    nodes = {
        "x": Node("$x$", 0, 0, round=True, observed=True),
        "enc": Node("encoder\n$q(z \\mid x, \\phi)$", 2.2, 0),
        "stats": Node("$\\mu_z$, $\\log \\sigma_z$", 4.4, 0),
        "eps": Node("$\\varepsilon \\sim N(0, I)$", 6.8, 1.5, width=2.0),
        "z": Node("$z = \\mu_z + \\sigma_z \\odot \\varepsilon$", 6.8, 0, width=2.4),
        "dec": Node("decoder\n$p(x \\mid z, \\theta)$", 9.2, 0),
        "out": Node("$\\mu_x$, $\\log \\sigma_x$", 11.4, 0),
        "kl": Node("KL to $p(z) = N(0, I)$", 4.4, -1.5, width=2.4),
        "rec": Node("$-\\log p(x \\mid z, \\theta)$", 11.4, -1.5, width=2.2),
    }
    edges = [
        ("x", "enc", ""),
        ("enc", "stats", ""),
        ("stats", "z", ""),
        ("eps", "z", "noise"),
        ("z", "dec", ""),
        ("dec", "out", ""),
        ("stats", "kl", ""),
        ("out", "rec", ""),
    ]
    fig, axes = new_figure(figsize=(11, 3.4))
    draw(axes[0, 0], nodes, edges, "A VAE; its loss is the reconstruction term plus the KL term")
    return show(fig)


def graphical_model(kind: str) -> Figure:
    """Plate diagram of ``kind``: ``"gmm"`` (pi -> z_i -> x_i <- mu, Sigma) or ``"vae"``
    (z_i -> x_i <- theta)."""
    if kind == "gmm":
        nodes = {
            "pi": Node("$\\pi$", 0, 1.2, round=True),
            "z": Node("$z_i$", 1.8, 1.2, round=True),
            "x": Node("$x_i$", 1.8, 0, round=True, observed=True),
            "theta": Node("$\\mu_k, \\Sigma_k$", 4.0, 0, width=1.4),
        }
        edges = [("pi", "z", ""), ("z", "x", ""), ("theta", "x", "")]
        title = "Gaussian mixture: $z_i$ picks a component, which produces $x_i$"
    elif kind == "vae":
        nodes = {
            "z": Node("$z_i$", 0, 1.2, round=True),
            "x": Node("$x_i$", 0, 0, round=True, observed=True),
            "theta": Node("$\\theta$", 2.0, 0, round=True),
        }
        edges = [("z", "x", ""), ("theta", "x", "")]
        title = "VAE: $z_i \\sim N(0, I)$, $x_i \\sim p(x \\mid z_i, \\theta)$"
    else:
        raise ValueError(f"kind must be 'gmm' or 'vae', got {kind!r}")
    fig, axes = new_figure(figsize=(6, 3.2))
    draw(axes[0, 0], nodes, edges, title, plates=((("z", "x"), "$i = 1, \\dots, n$"),))
    return show(fig)


def estimator_graphs() -> Figure:
    """Where the gradient flows: the score-function estimator beside the reparameterisation estimator."""
    score = {
        "phi": Node("$\\phi$", 0, 0, round=True),
        "q": Node("$q_\\phi$", 2.0, 0, width=1.0),
        "z": Node("$z \\sim q_\\phi$ (no gradient)", 4.6, 0, width=2.6),
        "f": Node("$f(z)$", 4.6, -1.5, width=1.2),
        "score": Node("$\\nabla_\\phi \\log q_\\phi(z)$", 2.0, -1.5, width=2.0),
    }
    reparam = {
        "phi": Node("$\\phi$", 0, 0, round=True),
        "eps": Node("$\\varepsilon \\sim N(0, I)$", 2.6, 1.5, width=2.0),
        "z": Node("$z = \\mu_\\phi + \\sigma_\\phi \\odot \\varepsilon$", 2.6, 0, width=2.8),
        "f": Node("$f(z)$", 5.2, 0, width=1.2),
    }
    fig, axes = new_figure(1, 2, figsize=(12, 3.4))
    draw(
        axes[0, 0],
        score,
        [("phi", "q", ""), ("q", "z", "sample"), ("z", "f", ""), ("q", "score", ""), ("z", "score", "")],
        "score function: $f(z)\\, \\nabla_\\phi \\log q_\\phi(z)$, gradient only through $\\log q_\\phi$",
    )
    draw(
        axes[0, 1],
        reparam,
        [("phi", "z", "gradient"), ("eps", "z", ""), ("z", "f", "gradient")],
        "reparameterisation: $\\nabla_\\phi f(\\mu_\\phi + \\sigma_\\phi \\odot \\varepsilon)$, through $f$",
    )
    return show(fig)
