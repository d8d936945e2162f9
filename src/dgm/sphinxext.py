"""The book's Sphinx extension (``_config.yml``: ``sphinx.extra_extensions``).

- Colab and Binder buttons open the notebook edition: :func:`dgm.colab.point_launch_buttons_at_edition`.
- Each script once: sphinx-thebe registers its inline configuration script with both the builder
  and the registry, and Sphinx 7.4 re-adds it from the registry as a different entry
  (``filename`` ``''`` instead of ``None``). Every page then declared ``const THEBE_JS_URL``
  twice, a SyntaxError in each reader's console. :func:`drop_duplicate_scripts` keeps the first.
"""

from __future__ import annotations

from typing import Any

from dgm.colab import NOTEBOOKS_BRANCH, point_launch_buttons_at_edition


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
    return {"parallel_read_safe": True, "parallel_write_safe": True}
