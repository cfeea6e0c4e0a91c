"""`files`: the files a model's CI jobs leave, where its own params put them — the run id its
training writes (`register_model.run_id_file`) and the gate's result (`promote_model.output`) —
and, for CI artifacts, a copy of them in one folder a CI file can name before the job runs
(docs/adopting.md, "Artifacts"). A CI file cannot read params.yaml; the bot can.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.config.params import Params
from bot.errors import BotError


@dataclass(frozen=True)
class ModelFile:
    key: str  # the params key that names it
    path: str  # as the params give it
    copy: Path | None = None  # where it was copied (None: not copied, or not written)


def model_files(params: Params) -> list[ModelFile]:
    return [
        ModelFile("register_model.run_id_file", params.register_model.run_id_file),
        ModelFile("promote_model.output", params.promote_model.output),
    ]


def _copy_path(path: str, folder: Path, base: Path) -> Path:
    """Where `copy_model_files` puts the file at `path` inside `folder`."""
    source = (base / path).resolve()
    inside = source.is_relative_to(base) and source != base
    return folder / (source.relative_to(base) if inside else Path(source.name))


RUN_ID_FILE_MOST_BYTES = 64 * 1024


def take_run_id(params: Params, folder: Path, root: Path | None = None) -> Path:
    """Put the run id file a training job left in `folder` (its artifacts, as `--copy-to` wrote
    them) back where the params say, for the bot's own job. Only that one file, at the path the
    params name: the artifacts come from a job that ran the project's code, so nothing in them
    may write anywhere else (params.yaml, a template) or point outside the folder (a symlink to
    a file of the bot's job)."""
    base = (root or Path.cwd()).resolve()
    path = params.register_model.run_id_file
    source = _copy_path(path, folder, base)
    if source.is_symlink() or not source.is_file():
        raise BotError(f"{source}: no run id file from the training job (a regular file)")
    if not source.resolve().is_relative_to(folder.resolve()):
        raise BotError(f"{source}: not inside {folder}")
    if source.stat().st_size > RUN_ID_FILE_MOST_BYTES:
        raise BotError(f"{source}: larger than a run id file can be")
    target = base / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    return target


def copy_model_files(params: Params, folder: Path, root: Path | None = None) -> list[ModelFile]:
    """Copy each file that exists into `folder`, at its path relative to `root` (the working
    directory), or by its name alone when it lies outside."""
    base = (root or Path.cwd()).resolve()
    copied = []
    for found in model_files(params):
        source = (base / found.path).resolve()
        if not source.is_file():
            copied.append(found)
            continue
        target = _copy_path(found.path, folder, base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append(ModelFile(found.key, found.path, target))
    return copied
