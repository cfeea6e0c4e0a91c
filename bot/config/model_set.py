"""Several models in one repository: params.yaml's `models:` (docs/design.md, "Configuration").

Without `models:` params.yaml is one model's, exactly as before. With it, the rest of the file
holds the defaults every model shares, written once, and each entry of `models:` is one model:
the path of its own params file (the DVC layout, `models/<name>/params.yaml`, next to its
pipeline) or a mapping written inline. A model's params are the shared defaults with its own
values deep-merged over them (mappings merge, lists and values replace), checked as strictly
as a single file: an error names the file the bad key came from.

Across models, what would make a request ambiguous is refused: two models with one name, two
names that read the same in a request marker, two merge-request models committing one record
file, two models reading one run id file or writing one gate result, and models whose requests
share no label (`poll` finds every model's requests in one
listing, by the labels they all carry).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.config import checks as check
from bot.config.params import DEFAULT_PARAMS, Params, parse_params, read_yaml
from bot.errors import ConfigError
from bot.threads.markers import marker_token
from bot.threads.thread import ThreadKind

MODELS_KEY = "models"
# With several models, the files a model's training and gate write default to its own folder
# (data/models/<name>/...) instead of the single-model paths every model would share.
DEFAULT_FOLDER = "data/models"
_PER_MODEL_FILES = (
    ("register_model", "run_id_file", "final_run_id.json"),
    ("promote_model", "output", "promoted_model.json"),
)


@dataclass(frozen=True)
class ModelSet:
    """The models this bot serves, in the order params.yaml lists them."""

    models: tuple[Params, ...]
    declared: bool = False  # params.yaml has `models:` (even with one entry)
    source: str = DEFAULT_PARAMS
    found: bool = True  # False: no params file, the built-in defaults
    # Every model's name is written in the params (False: the default name, which outside the
    # demo and the local platform is refused; docs/configuration.md, "Models").
    named: bool = True

    @classmethod
    def single(
        cls, params: Params, source: str = DEFAULT_PARAMS, *, found: bool = True, named: bool = True
    ) -> ModelSet:
        return cls((params,), declared=False, source=source, found=found, named=named)

    def __iter__(self) -> Iterator[Params]:
        return iter(self.models)

    def __len__(self) -> int:
        return len(self.models)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(params.model_name for params in self.models)

    def get(self, name: str) -> Params | None:
        return next((params for params in self.models if params.model_name == name), None)

    def named_in_marker(self, token: str) -> Params | None:
        """The model a request marker's `model=` names (a hint: the registry decides)."""
        return next((p for p in self.models if marker_token(p.model_name) == token), None)

    def pick(self, name: str | None, *, required: bool) -> Params:
        """One model for a command that acts on one (`--model`, PROMOTION_BOT_MODEL).

        Every command chooses its model here, so a name the params do not configure is refused
        in one place: a typo must never register, gate or report a model of its own."""
        if name and not self.named and not self.declared:
            return self.named_by(name).models[0]
        if name:
            found = self.get(name)
            if found is None:
                where = self.source if self.found else f"the defaults (no {self.source})"
                raise ConfigError(
                    f"--model: no model {name!r} in {where}; one of: {', '.join(self.names)}"
                )
            return found
        if required and len(self.models) > 1:
            raise ConfigError(
                f"{self.source} configures {len(self.models)} models "
                f"({', '.join(self.names)}): choose one with --model NAME (or PROMOTION_BOT_MODEL)"
            )
        return self.models[0]

    def named_by(self, name: str | None) -> ModelSet:
        """A params file that names no model (or none at all: the action's and the includes'
        `model` input with no params.yaml) takes its one model's name from `--model`; a file
        that names its models keeps them, and `pick` refuses any other name."""
        if not name or self.named or self.declared:
            return self
        one = self.models[0]
        try:
            named = check.model_name(name)
        except ValueError as exc:
            raise ConfigError(f"--model: {exc}") from None
        section = one.register_model.model_copy(update={"model_name": named})
        return replace(
            self, models=(one.model_copy(update={"register_model": section}),), named=True
        )

    def require_names(self, platform: str) -> None:
        """Outside the local platform the params name the model: the default name is the
        demo's, and acting on it against a team's registry is never what was meant."""
        if self.named or platform == "local":
            return
        where = f"{self.source}: " if self.found else f"no {self.source} here, so "
        raise ConfigError(
            f"{where}register_model.model_name is not set: name the registered model to promote "
            f"(the default {self.models[0].model_name!r} is the demo's, used on the local "
            "platform only)"
        )

    def only(self, name: str | None) -> ModelSet:
        """This set, or (a name given) the one model of that name: `serve --model churn`."""
        if not name:
            return self
        return replace(self, models=(self.pick(name, required=True),))

    @property
    def listing_labels(self) -> tuple[str, ...]:
        """The request labels every model's requests carry: one listing finds them all."""
        first, *rest = self.models
        return tuple(
            label
            for label in first.promotion.request.labels
            if all(label in params.promotion.request.labels for params in rest)
        )

    @property
    def thread_kinds(self) -> tuple[ThreadKind, ...]:
        kinds = {params.promotion.request.thread_kind for params in self.models}
        return tuple(kind for kind in ("issue", "merge_request") if kind in kinds)


def load_models(path: str | Path | None = None) -> ModelSet:
    """params.yaml as the models it configures: one (no `models:`, or no file), or several."""
    explicit = path is not None
    file = Path(path if path is not None else DEFAULT_PARAMS)
    if not file.exists():
        if explicit:
            raise ConfigError(f"{file}: no such file")
        return ModelSet.single(Params(), found=False, named=False)
    data = read_yaml(file)
    if not isinstance(data, dict) or MODELS_KEY not in data:
        section = data.get("register_model") if isinstance(data, dict) else None
        named = isinstance(section, dict) and "model_name" in section
        return ModelSet.single(parse_params(data, str(file)), str(file), named=named)
    shared = {key: value for key, value in data.items() if key != MODELS_KEY}
    entries = data[MODELS_KEY]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{file}: {MODELS_KEY}: expected a list of params files or mappings")
    models = tuple(
        _one_model(file, index, entry, shared) for index, entry in enumerate(entries, start=1)
    )
    _refuse_ambiguity(file, models)
    return ModelSet(models, declared=True, source=str(file))


def _one_model(file: Path, index: int, entry: object, shared: dict[str, Any]) -> Params:
    where = f"{file}: {MODELS_KEY}[{index}]"
    if isinstance(entry, str):
        try:
            check.repository_path(entry)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        own_file = file.parent / entry
        if not own_file.is_file():
            raise ConfigError(f"{where}: {entry}: no such file")
        own = read_yaml(own_file)
        source = str(own_file)
        if own is None:
            own = {}
        if not isinstance(own, dict):
            raise ConfigError(f"{source}: expected a mapping of sections, got {type(own).__name__}")
        if MODELS_KEY in own:
            raise ConfigError(f"{source}: {MODELS_KEY}: only {file} lists the models")
    elif isinstance(entry, dict):
        own, source = entry, where
    else:
        raise ConfigError(f"{where}: expected the path of a params file or a mapping")
    named = own.get("register_model")
    if not isinstance(named, dict) or "model_name" not in named:
        raise ConfigError(f"{source}: register_model.model_name: each model names its own")

    def source_of(loc: Sequence[str | int]) -> str:
        # A key the model sets is its file's; one only the shared part sets, the top file's.
        return source if _has(own, loc) or not _has(shared, loc) else str(file)

    merged = deep_merge(shared, own)
    name = named["model_name"]
    for section, key, default in _PER_MODEL_FILES:
        if isinstance(name, str) and not _has(merged, (section, key)):
            merged = deep_merge(merged, {section: {key: f"{DEFAULT_FOLDER}/{name}/{default}"}})
    return parse_params(merged, source, source_of)


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: mappings merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def _has(data: object, loc: Sequence[str | int]) -> bool:
    for part in loc:
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return bool(loc)


def _refuse_ambiguity(file: Path, models: tuple[Params, ...]) -> None:
    seen: dict[str, str] = {}
    records: dict[str, str] = {}
    files: dict[tuple[str, str], str] = {}  # (key, path) -> the model that reads or writes it
    for params in models:
        name = params.model_name
        token = marker_token(name)
        if token in seen:
            other = seen[token]
            why = "two models named" if other == name else "two models read as one in a marker:"
            shown = repr(name) if other == name else f"{other!r} and {name!r}"
            raise ConfigError(f"{file}: {MODELS_KEY}: {why} {shown}")
        seen[token] = name
        # One model's training output or gate result must never be taken for another's.
        for key, path in (
            ("register_model.run_id_file", params.register_model.run_id_file),
            ("promote_model.output", params.promote_model.output),
        ):
            if (key, path) in files:
                raise ConfigError(
                    f"{file}: {MODELS_KEY}: {files[key, path]!r} and {name!r} both use {path} "
                    f"({key}): give each model its own, next to its pipeline"
                )
            files[key, path] = name
        request = params.promotion.request
        if request.thread_kind == "merge_request":
            record = request.record_path.format(model_name=name)
            if record in records:
                raise ConfigError(
                    f"{file}: {MODELS_KEY}: {records[record]!r} and {name!r} both commit "
                    f"{record} (promotion.request.record_path)"
                )
            records[record] = name
    if not ModelSet(models, declared=True).listing_labels:
        raise ConfigError(
            f"{file}: {MODELS_KEY}: the models' promotion.request.labels share no label; poll "
            "finds every model's requests in one listing by a label they all carry"
        )
