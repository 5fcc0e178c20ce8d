"""Project rules that code review alone would miss."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_device_package_never_imports_tensorflow():
    """The Pi has no TensorFlow: the whole device side must import and build without it."""
    code = (
        "import sys, fer_pi.app.cli, fer_pi.vision.pipeline, fer_pi.board.paint, fer_pi.board.display, "
        "fer_pi.sources, "
        "fer_pi.vision.classify, fer_pi.app.config, fer_pi.outputs.results, fer_pi.sources.demo\n"
        "from fer_pi.vision.classify import Classifier\nfrom fer_pi.vision.modelfile import resolve_model\n"
        "Classifier(resolve_model('default'))\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'picamera2'))\n"
        "print(bad)\nsys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff not installed (test extra)")
def test_ruff_clean():
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not a source checkout")
    proc = subprocess.run(["ruff", "check", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_readme_settings_table_matches_the_code():
    from fer_pi.app.config import markdown_table

    readme = ROOT / "docs" / "settings.md"
    if not readme.is_file():
        pytest.skip("not a source checkout")
    text = readme.read_text()
    start = text.index("-->\n", text.index("<!-- settings:")) + 4
    end = text.index("\n<!-- /settings -->")
    assert text[start:end] == markdown_table(), "regenerate docs/settings.md's table from config.py"


def test_model_card_is_generated_from_the_files_beside_the_models():
    from fer_pi.vision.modelfile import models_dir
    from fer_tools.card import render

    models = models_dir()
    assert (models / "MODEL_CARD.md").read_text() == render(models), \
        "regenerate it: python -m fer_tools.card models"
