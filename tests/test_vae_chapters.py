"""The two VAE chapters as built (smoke profile): glued numbers, figures shown once, clean progress."""

from __future__ import annotations

import json

import pytest

from bookutils import glued

pytestmark = pytest.mark.book

GLUED = [
    "kl_per_point_univariate",
    "kl_per_point_multivariate",
    "kl_per_point_free_bits",
    "uni_mu_abs",
    "uni_std_dev",
    "uni_nonoise_ratio",
    "diag_penalty",
    "free_bits",
    "run_profile",
    *(f"{m}_{f}" for m in ("uni", "multi", "fb") for f in ("nll_gap", "elbo_gap", "posterior_kl")),
]


def _notebook(built_book, name):
    assert built_book.returncode == 0, built_book.log[-3000:]
    return built_book.executed / "book" / "vae" / f"{name}.ipynb"


def test_vae_2d_glues_every_number_it_states(built_book):
    values = glued(_notebook(built_book, "vae_2d"))
    missing = [k for k in GLUED if k not in values]
    assert not missing, missing
    assert values["run_profile"].strip("'") == "smoke"
    text = (built_book.html / "book" / "vae" / "vae_2d.html").read_text()
    assert "posterior collapse" in text


def test_every_figure_is_shown_exactly_once(built_book):
    nb = json.loads(_notebook(built_book, "vae_2d").read_text())
    # plotting calls per cell, as the chapter makes them (a loop over two models makes two or four)
    expected = {
        "visualize_2d_data(": 2,
        "plot_training_curves(": 1,
        "visualize_2d_samples(r.": 4,
        "plot_posteriors(r.": 2,
        "visualize_2d_samples(fb.": 1,
        "plot_posteriors(fb.": 1,
    }
    seen = {}
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        images = sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
        for call, n in expected.items():
            if call in src and cell["cell_type"] == "code":
                seen.setdefault(call, []).append(images)
                assert images == n, (call, images)
    assert set(seen) == set(expected)


def test_progress_is_one_clean_line_per_training_phase(built_book):
    nb = json.loads(_notebook(built_book, "vae_2d").read_text())
    cell = next(c for c in nb["cells"] if "result = run(settings)" in "".join(c["source"]))
    lines = [
        o["data"]["text/plain"]
        for o in cell["outputs"]
        if o["output_type"] == "display_data" and "epochs" in o.get("data", {}).get("text/plain", "")
    ]
    assert len(lines) in (0, 2 * 3)  # two phases for each of three models; none if all were loaded
    for line in lines:
        assert "\r" not in line and "\n" not in line and "100%" in line
    assert not any(o.get("name") == "stderr" for o in cell["outputs"])


def test_vae_questions_runs(built_book):
    nb = json.loads(_notebook(built_book, "vae_questions").read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
    assert "x (8, 2) -> encoder output (8, 4)" in text
    assert "{'encoder': True, 'decoder': True}" in text
    assert "| the decoder: False" in text
    losses = next(line for line in text.splitlines() if line.startswith("{'elbo_loss'"))
    by_hand = next(line for line in text.splitlines() if line.startswith("by hand:")).split()[2:]
    values = eval(losses)  # the dict printed by the chapter
    assert [f"{values[k]}" for k in ("elbo_loss", "recon_loss", "kl_loss")] == by_hand
