"""The wheel: built from the repository, installed into a clean venv (pip's cache supplies the
llama-cpp-python wheel built earlier), imports as one `placecell` package, no tests or eval data."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents_and_clean_install(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-w", str(dist), "-q"], check=True, cwd=tmp_path, timeout=600)
    wheel = next(dist.glob("placecell-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"placecell", wheel.name.split("-py")[0].replace("placecell-", "placecell-") + ".dist-info"} or \
        tops - {"placecell"} == {n for n in tops if n.endswith(".dist-info")}
    assert "placecell/prompts/extract_system.txt" in names
    assert "placecell/tools/assets/minilm/tokenizer.json" in names
    assert not [n for n in names if n.startswith("placecell/tests/") or n.startswith("placecell/evals/data/")
                or n.startswith("placecell/evals/cache/")]

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", str(wheel)], check=True, timeout=1800)
    out = subprocess.run([str(py), "-c", "import placecell.graphs, placecell.tools, placecell.agents, placecell.cli;"
                          "import placecell; print(placecell.__file__)"],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert str(env_dir) in out.stdout
    assert subprocess.run([str(env_dir / "bin" / "placecell"), "models", "list"], capture_output=True,
                          timeout=120).returncode == 0
