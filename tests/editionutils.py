"""A reader's environment for the notebook edition: a virtual environment with only the package.

Colab after the setup cell, or Binder: the package ``dgm`` installed from this checkout (not
editable), its declared dependencies (``pyproject.toml``), and a kernel. No myst-nb, Sphinx or
jupytext: a chapter that needs them at run time fails here. Versions are held to the pins of
``requirements.txt`` (as constraints), and torch to its CPU build, so nothing else is downloaded.
The dependencies are installed once into ``.cache/reader-env-<hash>``; the package is reinstalled
from the checkout into a fresh copy of the kernel spec every session.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

from bookutils import ROOT
from bookutils import environ as set_environ

KERNEL_NAME = "dgm-reader"


@dataclass(frozen=True)
class Edition:
    """The notebook edition written by ``write_edition`` into ``out``."""

    out: Path
    notebooks: tuple[Path, ...]

    def docnames(self) -> list[str]:
        return [p.relative_to(self.out).with_suffix("").as_posix() for p in self.notebooks]


@dataclass(frozen=True)
class ReaderEnv:
    """The reader's virtual environment and a kernel spec folder naming its Python."""

    prefix: Path
    kernels: Path

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    def kernel_manager(self):
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        ksm = KernelSpecManager(kernel_dirs=[str(self.kernels)])
        return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


def constraints() -> str:
    """The exact pins of ``requirements.txt`` (``name==version`` lines), as a pip constraints file."""
    pins = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    return "\n".join(p for p in pins if re.match(r"^[A-Za-z0-9_.-]+==\S+$", p)) + "\n"


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"pip install {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )


def _package_copy(tmp: Path) -> Path:
    """What ``pip install`` of the repository needs, copied: setuptools writes ``build/`` into its source."""
    import shutil

    copy = tmp / "package"
    shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, copy / name)
    return copy


def make_reader_env(tmp: Path) -> ReaderEnv:
    """The reader's environment (dependencies cached by the hash of the pins and pyproject.toml)."""
    key = hashlib.sha256((constraints() + (ROOT / "pyproject.toml").read_text()).encode()).hexdigest()[:12]
    prefix = ROOT / ".cache" / f"reader-env-{key}"
    cons = tmp / "constraints.txt"
    cons.write_text(constraints())
    stamp = prefix / ".deps-installed"
    package = _package_copy(tmp)
    if not stamp.is_file():
        venv.EnvBuilder(with_pip=True, clear=True).create(prefix)
        python = prefix / "bin" / "python"
        _pip(python, "-c", str(cons), "torch")  # first, so that the CPU build on this disk is taken
        _pip(python, "-c", str(cons), "ipykernel", str(package))
        stamp.write_text("ok\n")
    python = prefix / "bin" / "python"
    _pip(python, "--no-deps", "--force-reinstall", str(package))
    subprocess.run(
        [str(python), "-m", "ipykernel", "install", "--prefix", str(tmp / "k"), "--name", KERNEL_NAME],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return ReaderEnv(prefix, tmp / "k" / "share" / "jupyter" / "kernels")


def run_in(env: ReaderEnv, code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` with the reader's Python."""
    return subprocess.run(
        [str(env.python), "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )


def execute_notebook(env: ReaderEnv, path: Path, cwd: Path, timeout: int = 900, **environ: str):
    """Execute the notebook at ``path`` top to bottom in the reader's kernel; return it, outputs included."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with set_environ(**environ):
        NotebookClient(
            nb, km=env.kernel_manager(), timeout=timeout, resources={"metadata": {"path": str(cwd)}}
        ).execute()
    return nb
