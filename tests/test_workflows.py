"""The publishing workflow is safe to run on a public repository: zizmor (a GitHub Actions security
linter) finds nothing in ``.github/workflows``, offline, at its strictest persona.

zizmor comes with the dev extra. The second test plants the flaws the workflow once had (an action
on a tag, write permissions for every job, credentials persisted by checkout), so the check is
known to bite.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _zizmor() -> str:
    exe = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    if not Path(exe).exists():
        pytest.skip("zizmor (the dev extra) is not installed")
    return exe


def _audit(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_zizmor(), "--offline", "--persona", "pedantic", "--no-progress", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_workflows_have_no_findings():
    run = _audit(WORKFLOWS)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "No findings to report" in run.stdout + run.stderr


def test_every_action_is_pinned_to_a_commit_and_jobs_ask_only_for_their_permissions():
    for path in WORKFLOWS.glob("*.yml"):
        flow = yaml.safe_load(path.read_text())
        assert flow.get("permissions") == {}, f"{path.name}: no workflow-wide permissions"
        for name, job in flow["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {name} states its permissions"
            for step in job.get("steps", []):
                if "uses" in step:
                    ref = step["uses"].split("@", 1)[1]
                    assert len(ref) == 40 and all(c in "0123456789abcdef" for c in ref), step["uses"]
                    if step["uses"].startswith("actions/checkout@"):
                        assert step.get("with", {}).get("persist-credentials") is False


def test_the_audit_catches_the_old_flaws(tmp_path):
    flawed = tmp_path / "book.yml"
    flawed.write_text(
        "name: book\non: push\npermissions:\n  contents: write\n  pages: write\n  id-token: write\n"
        "jobs:\n  build:\n    name: build\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n      - run: make book\n")
    run = _audit(flawed)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "unpinned-uses" in out and "excessive-permissions" in out and "artipacked" in out
