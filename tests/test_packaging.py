"""pyproject.toml builds without setuptools' deprecation warnings (the licence as an SPDX expression)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement

from tests.harness import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_license_is_an_spdx_expression() -> None:
    # a table (``license = { text = … }``) makes setuptools >= 77 print a deprecation box on every install
    license = PYPROJECT["project"]["license"]
    assert isinstance(license, str)
    assert canonicalize_license_expression(license) == license
    classifiers = PYPROJECT["project"].get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")], "PEP 639: no licence classifiers"


def test_build_requires_a_setuptools_that_reads_spdx_expressions() -> None:
    requires = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    (setuptools,) = [r for r in requires if r.name == "setuptools"]
    assert "77.0.0" in setuptools.specifier and "76.99" not in setuptools.specifier


@pytest.mark.slow
def test_wheel_builds_without_deprecation_warnings(tmp_path: Path) -> None:
    # a copy of the sources, so the build leaves no build/ or egg-info in the work tree
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "bot", source / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "deprecated" not in output.lower() and "BuildBackendWarning" not in output, output
    (wheel,) = out.glob("alliance_bot-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    assert f"License-Expression: {PYPROJECT['project']['license']}" in text
