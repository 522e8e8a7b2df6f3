"""The design brief's direction of imports holds, and `make test` fails when it breaks."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ["portal", "desk", "upgrades", "incidents", "subscriptions", "support"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def project_copy(tmp_path) -> Path:
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("migrations"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_make_test_target_runs_the_import_contracts():
    makefile = (ROOT / "Makefile").read_text()
    target = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "lint-imports" in target


def test_the_apps_import_downward_only(project_copy):
    result = _lint_imports(project_copy)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("module", "upward"),
    [
        ("support/channels.py", "from desk.models import Inquiry"),
        ("subscriptions/models.py", "from incidents.models import Disaster"),
        ("incidents/services.py", "import upgrades.services"),
        ("upgrades/models.py", "from desk import services"),
    ],
)
def test_an_upward_import_breaks_the_contract(project_copy, module, upward):
    path = project_copy / module
    path.write_text(f"{upward}  # noqa\n{path.read_text()}")

    result = _lint_imports(project_copy)

    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def test_support_names_no_app_above_it_by_string():
    # A string foreign key or apps.get_model would hide an upward dependency from the
    # import contracts: the bottom layer holds neither.
    above = "|".join(APPS[:-1])
    hidden = re.compile(rf"""get_model\(|ForeignKey\(\s*["'](?:{above})\.""")
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "support").rglob("*.py")
        if "migrations" not in path.parts and hidden.search(path.read_text())
    ]
    assert offenders == []
