"""The book's Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

- Every page's footer says which commit, date and execution profile built it: :func:`build_stamp`.
- Colab and Binder buttons open the notebook edition: :func:`dgm.book.colab.point_launch_buttons_at_edition`.
- Each script once: sphinx-thebe registers its inline configuration script with both the builder
  and the registry, and Sphinx 7.4 re-adds it from the registry as a different entry
  (``filename`` ``''`` instead of ``None``). Every page then declared ``const THEBE_JS_URL``
  twice, a SyntaxError in each reader's console. :func:`drop_duplicate_scripts` keeps the first.
- The PDF has the site's structure: :func:`structure_the_pdf` makes each toctree caption a
  ``\\part`` and the intro's sections one chapter, "Introduction" (Sphinx's LaTeX writer would make
  each of them a chapter, put no part anywhere and title the table of contents after the first
  caption).
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
    app.connect("doctree-resolved", structure_the_pdf)
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
    from dgm.profiles import rehearsal_steps

    steps = rehearsal_steps(environ)
    rehearsal = "" if steps is None else f" REHEARSAL: every pass over the data cut to {steps} steps."
    return (
        f'<p class="dgm-build-stamp">Built from {what} on {today} with the '
        f"<code>{html.escape(current_profile(environ))}</code> execution profile.{rehearsal}</p>"
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
    # Sphinx names the table of contents after the root's first toctree caption ("Foundations")
    contents = "\\addto\\captionsenglish{\\renewcommand{\\contentsname}{Contents}}"
    elements["preamble"] = (
        (elements.get("preamble") or "") + "\n" + latex_macros(macros) + "\n" + contents + "\n"
    )
    config.latex_elements = elements


INTRODUCTION = "Introduction"


def structure_the_pdf(app, doctree, docname: str) -> None:
    """``doctree-resolved`` hook, LaTeX only, on the whole book assembled into its root document.

    Before the first chapter of each toctree goes ``\\part{caption}``; the root's own text and
    sections (before its first toctree) go into one chapter, :data:`INTRODUCTION`, so that they are
    not chapters 1 to 5 of the first part. The HTML's doctrees are left alone.
    """
    from docutils import nodes
    from sphinx import addnodes
    from sphinx.util import texescape

    if app.builder.name != "latex" or docname != app.config.root_doc:
        return
    files = {n["docname"]: n for n in doctree.findall(addnodes.start_of_file)}
    if not files:  # not the assembled book
        return
    for toctree in app.env.get_doctree(docname).findall(addnodes.toctree):
        entries = [ref for _, ref in toctree["entries"] if ref in files]
        caption = toctree.get("caption")
        if caption and entries:
            first = files[entries[0]]
            part = nodes.raw("", f"\\part{{{texescape.escape(caption)}}}\n", format="latex")
            first.parent.insert(first.parent.index(first), part)
    root = next(iter(doctree.findall(nodes.section)), None)
    if root is None:
        return
    children = list(root.children)
    start = 1 if children and isinstance(children[0], nodes.title) else 0
    end = next(
        (
            i
            for i, c in enumerate(children)
            if i >= start and next(iter(c.findall(addnodes.start_of_file)), None)
        ),
        len(children),
    )
    if end <= start:
        return
    intro = nodes.section("", nodes.title(INTRODUCTION, INTRODUCTION), ids=["book-introduction"])
    for child in children[start:end]:
        root.remove(child)
        intro += child
    root.insert(start, intro)
