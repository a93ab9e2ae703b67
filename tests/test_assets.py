"""models/ is found in a checkout and in a wheel install, and a wheel carries it."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import pixelscrub.assets as assets

ROOT = Path(__file__).resolve().parents[1]


def test_checkout_models_are_used_in_the_source_tree(monkeypatch):
    monkeypatch.delenv("PIXELSCRUB_MODELS", raising=False)
    assert assets.models_dir() == ROOT / "models" / assets.MODELS_VERSION


def test_installed_copy_is_found_without_a_checkout(tmp_path, monkeypatch):
    """A wheel install has no models/ beside the package: the copy under
    <prefix>/share/pixelscrub/models is used."""
    monkeypatch.delenv("PIXELSCRUB_MODELS", raising=False)
    monkeypatch.setattr(assets, "__file__", str(tmp_path / "site" / "pixelscrub" / "assets.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    with pytest.raises(FileNotFoundError, match="share/pixelscrub/models"):
        assets.models_dir()
    shared = tmp_path / "prefix" / "share" / "pixelscrub" / "models" / assets.MODELS_VERSION
    shared.mkdir(parents=True)
    assert assets.models_dir() == shared
    monkeypatch.setenv("PIXELSCRUB_MODELS", str(tmp_path / "mine"))
    with pytest.raises(FileNotFoundError, match="mine"):
        assets.models_dir()  # an explicit folder is never silently replaced


def test_wheel_carries_the_models(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("pixelscrub", "models"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("pixelscrub-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        base = ROOT / "models" / assets.MODELS_VERSION
        for asset in (p for p in base.rglob("*") if p.is_file()):
            rel = asset.relative_to(base).as_posix()
            inside = [n for n in names if n.endswith(
                f".data/data/share/pixelscrub/models/{assets.MODELS_VERSION}/{rel}")]
            assert len(inside) == 1, rel
            assert z.read(inside[0]) == asset.read_bytes()
