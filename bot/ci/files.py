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
        inside = source.is_relative_to(base) and source != base
        target = folder / (source.relative_to(base) if inside else Path(source.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        copied.append(ModelFile(found.key, found.path, target))
    return copied
