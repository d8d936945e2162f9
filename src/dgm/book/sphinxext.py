"""The book's Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

- Every page's footer says which commit, date and execution profile built it: :func:`build_stamp`.
- Colab and Binder buttons open the notebook edition: :func:`dgm.book.colab.point_launch_buttons_at_edition`.
- Each script once: sphinx-thebe registers its inline configuration script with both the builder
  and the registry, and Sphinx 7.4 re-adds it from the registry as a different entry
  (``filename`` ``''`` instead of ``None``). Every page then declared ``const THEBE_JS_URL``
  twice, a SyntaxError in each reader's console. :func:`drop_duplicate_scripts` keeps the first.
"""

from __future__ import annotations

from typing import Any

from dgm.book.colab import NOTEBOOKS_BRANCH, point_launch_buttons_at_edition


def _script_key(script: Any) -> tuple:
    """What makes two ``<script>`` entries the same: source (or inline body) and attributes."""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context`` hook: remove repeated entries from the page's ``script_files``."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app) -> dict[str, Any]:
    """Register the config value ``colab_notebooks_branch`` and the two page hooks."""
    app.add_config_value("colab_notebooks_branch", NOTEBOOKS_BRANCH, "html")
    # sphinx-book-theme adds the launch buttons at priority 501: run after it.
    app.connect("html-page-context", point_launch_buttons_at_edition, priority=600)
    app.connect("html-page-context", drop_duplicate_scripts, priority=600)
    app.connect("config-inited", add_build_stamp)
    app.connect("config-inited", add_latex_macros)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def build_stamp(srcdir: str, environ: dict[str, str] | None = None, today: str | None = None) -> str:
    """The footer line of every page: the commit, the date and the execution profile of the build.

    The commit is ``$DGM_BUILD_COMMIT`` (the publish workflow sets it), else the checkout's HEAD,
    else "an uncommitted tree"; the date is today's in UTC, or ``$SOURCE_DATE_EPOCH``'s.
    """
    import datetime as dt
    import html
    import os
    import subprocess

    from dgm.profiles import current_profile

    environ = dict(os.environ if environ is None else environ)
    commit = environ.get("DGM_BUILD_COMMIT", "").strip()
    if not commit:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=srcdir,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
    if today is None:
        epoch = environ.get("SOURCE_DATE_EPOCH")
        when = (
            dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc)
            if epoch
            else dt.datetime.now(dt.timezone.utc)
        )
        today = when.strftime("%Y-%m-%d")
    what = f"commit <code>{html.escape(commit[:12])}</code>" if commit else "an uncommitted tree"
    return (
        f'<p class="dgm-build-stamp">Built from {what} on {today} with the '
        f"<code>{html.escape(current_profile(environ))}</code> execution profile.</p>"
    )


def add_build_stamp(app, config) -> None:
    """``config-inited`` hook: put :func:`build_stamp` in the theme's footer of every page."""
    options = dict(config.html_theme_options or {})
    options["extra_footer"] = (options.get("extra_footer") or "") + build_stamp(app.srcdir)
    config.html_theme_options = options


def latex_macros(macros: dict) -> str:
    """The book's math macros (MathJax's ``tex.macros``) as LaTeX definitions, one per line.

    A macro is a body or ``[body, n_args]``. Each is defined with ``\\providecommand`` then
    ``\\renewcommand``, so that a name LaTeX already has (``\\L``) is redefined instead of failing,
    and its body is a group, as in MathJax (a subscript ``q_\\bphi`` takes the whole macro).
    """
    lines = []
    for name, body in macros.items():
        body, n = (body[0], int(body[1])) if isinstance(body, (list, tuple)) else (str(body), 0)
        args = f"[{n}]" if n else ""
        # the body in a group, as MathJax reads it: q_\\bphi is q_{\\boldsymbol{\\phi}}
        lines.append(f"\\providecommand{{\\{name}}}{{}}\\renewcommand{{\\{name}}}{args}{{{{{body}}}}}")
    return "\n".join(lines)


def add_latex_macros(app, config) -> None:
    """``config-inited`` hook: the PDF's preamble defines the HTML's math macros (one definition, in
    ``_config.yml``)."""
    macros = ((getattr(config, "mathjax3_config", None) or {}).get("tex") or {}).get("macros") or {}
    elements = dict(config.latex_elements or {})
    elements["preamble"] = (elements.get("preamble") or "") + "\n" + latex_macros(macros) + "\n"
    config.latex_elements = elements
