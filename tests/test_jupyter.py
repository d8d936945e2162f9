from __future__ import annotations

import IPython

from dgm.jupyter import kernel_shell


def test_no_kernel_outside_jupyter():
    assert kernel_shell() is None  # pytest runs in no IPython kernel


def test_a_shell_without_a_kernel_is_not_a_kernel(monkeypatch):
    class TerminalShell:  # what IPython in a terminal looks like: no .kernel
        pass

    monkeypatch.setattr(IPython, "get_ipython", lambda: TerminalShell())
    assert kernel_shell() is None

    class KernelShell:
        kernel = object()

    shell = KernelShell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert kernel_shell() is shell
