"""Where the code runs: inside a Jupyter kernel (a notebook, Colab, the book build) or not."""

from __future__ import annotations


def kernel_shell():
    """The running IPython kernel's shell, or None outside a Jupyter kernel (a terminal, a script)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return shell if shell is not None and hasattr(shell, "kernel") else None
