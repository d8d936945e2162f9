"""The weekly report on the newest releases, on a real pytest JUnit report."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dgm.book.newest import main, read_junit, version_changes

LOCK = "# a header\naaa==1.0\nbbb-c==2.0\ntorch==2.13.0\ngone==0.1\n"
FREEZE = "aaa==1.0\nBbb_C==2.1\ntorch==2.14.0+cpu\nnew-one==3.0\npip==25.0\n"

SUITE = """
import pytest

def test_passes():
    assert 1 + 1 == 2

def test_fails():
    assert [1, 2] == [1, 3], "the lists differ | badly"

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("the fixture broke")

def test_errors(broken):
    pass
"""


def _junit(tmp_path, suite=SUITE):
    (tmp_path / "test_suite.py").write_text(suite)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--junitxml=report.xml",
            "test_suite.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    return tmp_path / "report.xml"


def test_versions_are_compared_by_canonical_name_without_local_labels():
    from dgm.book.lock import parse_pins

    changes = version_changes(parse_pins(LOCK), {k: v for k, v in parse_pins(FREEZE).items() if k != "pip"})
    assert changes.changed == [("bbb-c", "2.0", "2.1"), ("torch", "2.13.0", "2.14.0")]
    assert changes.added == [("new-one", "3.0")] and changes.removed == [("gone", "0.1")]


def test_a_real_junit_report_is_read(tmp_path):
    outcomes = read_junit(_junit(tmp_path))
    assert outcomes.tests == 4 and outcomes.skipped == 1 and outcomes.passed == 1
    names = [name for name, _ in outcomes.failures]
    assert names == ["test_suite::test_fails", "test_suite::test_errors"]
    assert "the lists differ" in outcomes.failures[0][1] and "the fixture broke" in outcomes.failures[1][1]
    (tmp_path / "junk.xml").write_text("<html><body>no</body></html>")
    with pytest.raises(ValueError, match="not a JUnit XML report"):
        read_junit(tmp_path / "junk.xml")
    (tmp_path / "cut.xml").write_text("<testsuites><testsuite")
    with pytest.raises(ValueError, match="cut.xml: not a JUnit XML report"):
        read_junit(tmp_path / "cut.xml")


def _files(tmp_path):
    (tmp_path / "requirements.lock").write_text(LOCK)
    (tmp_path / "newest.txt").write_text(FREEZE)
    return ["--lock", str(tmp_path / "requirements.lock"), "--freeze", str(tmp_path / "newest.txt")]


def test_the_report_says_what_breaks_and_fails(tmp_path, capsys):
    junit = _junit(tmp_path)
    out = tmp_path / "report.md"
    assert main(_files(tmp_path) + ["--junit", str(junit), "--out", str(out)]) == 1
    text = out.read_text()
    assert text in capsys.readouterr().out  # printed (to the run's summary) and written
    assert "**2 of 4 tests fail** with the newest releases (1 passed, 1 skipped)" in text
    assert "| `test_suite::test_fails` |" in text and "differ \\| badly" in text  # the table survives a bar
    assert "| torch | 2.13.0 | 2.14.0 |" in text and "| bbb-c | 2.0 | 2.1 |" in text and "aaa" not in text
    assert "new-one 3.0" in text and "gone 0.1" in text and "pip" not in text


def test_the_report_of_a_passing_run_and_of_a_run_that_never_tested(tmp_path, capsys):
    passing = _junit(tmp_path, "def test_ok():\n    pass\n")
    assert main(_files(tmp_path) + ["--junit", str(passing)]) == 0
    assert "**All 1 tests pass** with the newest releases" in capsys.readouterr().out
    log = tmp_path / "test.log"
    log.write_text("collecting\n" + "ERROR: No matching distribution found for torch==99\n")
    assert main(_files(tmp_path) + ["--junit", str(tmp_path / "missing.xml"), "--log", str(log)]) == 1
    text = capsys.readouterr().out
    assert "**The tests did not run**" in text and "No matching distribution found for torch==99" in text
    files = _files(tmp_path)
    (tmp_path / "newest.txt").write_text("")  # installing failed before pip freeze
    assert main(files + ["--junit", str(tmp_path / "no.xml")]) == 1
    text = capsys.readouterr().out
    assert "installing failed" in text and "Gone" not in text
    with pytest.raises(SystemExit):
        main(["--lock", str(tmp_path / "nope.lock"), "--freeze", str(log), "--junit", str(passing)])


def test_the_report_runs_as_a_script_with_the_standard_library_only(tmp_path):
    # the weekly job runs it with the container's Python, which has neither torch nor the package
    from bookutils import ROOT

    script = ROOT / "src" / "dgm" / "book" / "newest.py"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(script)] + _files(tmp_path) + ["--junit", str(_junit(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and "**2 of 4 tests fail**" in proc.stdout, proc.stderr[-2000:]
