"""params.yaml: every key with its default and its checks (docs/design.md, "Configuration").

A broken file is one `ConfigError` line naming the file and the key, never a traceback. What is
not in params.yaml (where the registry and the forge are, secrets) is `bot.config.settings`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot import signing
from bot.config import checks as check
from bot.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_PARAMS = "params.yaml"


class _Section(BaseModel):
    # allow_inf_nan=False: a tolerance or threshold of nan or inf would pass or fail everything.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _tuple_from_list(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


T = TypeVar("T")
# A YAML list, kept as a tuple (the sections are frozen); strict mode would refuse the list.
Listed = Annotated[tuple[T, ...], BeforeValidator(_tuple_from_list)]

INITIAL_ALIASES = ("ci-smoke", "smoke")
_alias_name = check.alias_name


class RegisterModel(_Section):
    model_name: str = Field("soccer-match-outcome", min_length=1)
    model_stage: Literal["ci-smoke", "smoke"] = "smoke"
    run_id_file: str = Field("data/models/final_run_id.json", min_length=1)
    artifact_path: str = Field("model", min_length=1)

    _name = field_validator("model_name")(check.model_name)


class PromoteModel(_Section):
    metric: str = Field("final.logloss", min_length=1)
    greater_is_better: bool = False
    tolerance: float = Field(0.005, ge=0)
    candidate_alias: str = Field("candidate", min_length=1)
    output: str = Field("data/models/promoted_model.json", min_length=1)

    _alias = field_validator("candidate_alias")(_alias_name)


class Inference(_Section):
    model_stage: str = "smoke"

    _alias = field_validator("model_stage")(_alias_name)


class RequestConfig(_Section):
    kind: Literal["issue", "merge_request", "pull_request"] = "issue"
    labels: Listed[str] = ("model-promotion",)
    target_branch: str = Field("main", min_length=1)
    record_path: str = "promotions/{model_name}.json"
    merge_on_promote: bool = True
    close_on_promote: bool = True
    chart: bool = True  # the trend of the gate metric over the newest versions, in Mermaid
    # Who a new request notifies; None means the users of approvers.users (never the requester).
    assignees: Listed[str] | None = None
    reviewers: Listed[str] | None = None  # merge_request kind; GitHub teams as org/team-slug

    @field_validator("record_path")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        try:
            value.format(model_name="m")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"only {{model_name}} may be used in it ({exc!r})") from None
        return value

    @property
    def thread_kind(self) -> Literal["issue", "merge_request"]:
        """GitHub's pull_request is the same kind as GitLab's merge_request."""
        return "issue" if self.kind == "issue" else "merge_request"

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:  # the bot finds its requests by these labels
            raise ValueError("at least one label")
        return tuple(check.label(item) for item in value)

    @field_validator("assignees")
    @classmethod
    def _assignees(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(check.assignee(item) for item in value)

    @field_validator("reviewers")
    @classmethod
    def _reviewers(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(check.reviewer(item) for item in value)


DEFAULT_MIN_ROLE = "maintainer"


class Approvers(_Section):
    users: Listed[str] = ()
    # GitHub teams `org/team-slug`, GitLab groups `group/subgroup`: their members, as the forge's
    # membership API says at the time of the command (subgroups inherit a group's members).
    teams: Listed[str] = ()
    # Not given: DEFAULT_MIN_ROLE only when neither users nor teams are given (`_default_role`):
    # `users: [maria]` means maria, not maria and every maintainer. Given, it always applies.
    min_role: str | None = DEFAULT_MIN_ROLE
    required_approvals: int = Field(1, ge=1)
    allow_self_approval: bool = False
    require_platform_approval: bool = False

    @field_validator("users")
    @classmethod
    def _usernames(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check.person(item) for item in value)

    @field_validator("teams")
    @classmethod
    def _team_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check.team(item) for item in value)

    _role = field_validator("min_role")(check.min_role)

    @model_validator(mode="before")
    @classmethod
    def _default_role(cls, data: Any) -> Any:
        """The default role resolved once, here: the rules read `min_role` as given."""
        if isinstance(data, Mapping) and "min_role" not in data:
            named = data.get("users") or data.get("teams")
            return {**data, "min_role": None if named else DEFAULT_MIN_ROLE}
        return data

    @model_validator(mode="after")
    def _someone_may_approve(self) -> Approvers:
        if self.min_role is None and not self.users and not self.teams:
            raise ValueError("min_role is null and users and teams are empty: nobody could approve")
        return self


class Threshold(_Section):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}: no value could pass")
        return self


class Gates(_Section):
    max_regression_vs_champion: float = Field(0.0, ge=0)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    required_tags: Listed[str] = ()

    @field_validator("required_tags")
    @classmethod
    def _tag_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for tag in value:
            if not tag.strip():
                raise ValueError("an empty tag name")
        return value


class ChecklistItem(_Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(min_length=1)


DEFAULT_CHECKLIST = (
    ChecklistItem(id="metrics", text="Metrics and calibration reviewed against the champion"),
    ChecklistItem(id="data", text="Training data version and drift report checked"),
    ChecklistItem(id="contract", text="Model contract unchanged, or consumers notified"),
    ChecklistItem(id="rollback", text="Rollback target confirmed (previous champion)"),
)


class Deployments(_Section):
    """Each champion change also recorded as a forge deployment (display only: docs/security.md,
    "The status page"). On by default: 2 forge calls after the answer when the commit is known
    (docs/benchmark.md); a token without the right costs one warning (bot.commands.deployments).
    """

    enabled: bool = True
    environment_prefix: str = Field("model/", max_length=100)
    # The branch the deployments name; "" = the branch the CI job runs on, else the repository's
    # default branch.
    ref: str = ""


class Promotion(_Section):
    champion_alias: str = Field("champion", min_length=1)
    request: RequestConfig = Field(default_factory=RequestConfig)
    approvers: Approvers = Field(default_factory=Approvers)
    gates: Gates = Field(default_factory=Gates)
    checklist: Listed[ChecklistItem] = DEFAULT_CHECKLIST
    require_checklist: bool = True
    templates_dir: str = "templates"
    post_promote_hook: str | None = None
    # The public keys whose signatures the bot and `verify` accept, besides the bot's own
    # (docs/security.md): reviewed here like code, so rotating is a change to this file.
    trusted_keys: Listed[str] = ()
    deployments: Deployments = Field(default_factory=Deployments)

    _alias = field_validator("champion_alias")(_alias_name)
    # Templates are code run with the bot's environment: only the repository's own, reviewed
    # like params.yaml; "" means the packaged templates only.
    _templates = field_validator("templates_dir")(check.repository_folder)

    @field_validator("post_promote_hook")
    @classmethod
    def _hook_url(cls, value: str | None) -> str | None:
        problem = check.http_url(value) if value is not None else ""
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("trusted_keys")
    @classmethod
    def _public_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            signing.public_key(text)  # a ValueError pydantic names the key with
        return tuple(text.strip() for text in value)

    @field_validator("checklist")
    @classmethod
    def _unique_ids(cls, value: tuple[ChecklistItem, ...]) -> tuple[ChecklistItem, ...]:
        # Ticks are read back by id: two items with one id could never be told apart.
        ids = [item.id for item in value]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate checklist id {duplicates[0]!r}")
        return value


class Params(_Section):
    register_model: RegisterModel = Field(default_factory=RegisterModel)
    promote_model: PromoteModel = Field(default_factory=PromoteModel)
    inference: Inference = Field(default_factory=Inference)
    promotion: Promotion = Field(default_factory=Promotion)

    @model_validator(mode="after")
    def _distinct_aliases(self) -> Params:
        # One alias per lifecycle step: a candidate alias equal to the champion's would let the
        # automated gate move the champion without any human approval.
        candidate = self.promote_model.candidate_alias
        champion = self.promotion.champion_alias
        if candidate == champion:
            raise ValueError(
                f"promote_model.candidate_alias and promotion.champion_alias are both {champion!r}"
            )
        for key, alias in (
            ("promote_model.candidate_alias", candidate),
            ("promotion.champion_alias", champion),
        ):
            if alias in INITIAL_ALIASES:
                raise ValueError(f"{key}: {alias!r} is an initial alias (set by register)")
        # The record file is committed to the repository, the local forge writes it to disk.
        path = self.promotion.request.record_path.format(model_name=self.model_name)
        try:
            check.repository_path(path)
        except ValueError as exc:
            raise ValueError(f"promotion.request.record_path: {exc}") from None
        return self

    @model_validator(mode="after")
    def _threshold_names(self) -> Params:
        # Which metrics a run logs is known at gate time only; a threshold that writes the gate
        # metric's name another way (case, `_` for `.`) is a misspelling knowable now, and
        # MLflow's names are exact: it would fail every request as "missing".
        metric = self.promote_model.metric
        for name in self.promotion.gates.thresholds:
            if name != metric and _loose(name) == _loose(metric):
                raise ValueError(
                    f"promotion.gates.thresholds: {name!r} is not the gate metric "
                    f"promote_model.metric {metric!r} (metric names are exact)"
                )
        return self

    @property
    def model_name(self) -> str:
        return self.register_model.model_name


def _loose(name: str) -> str:
    return "".join(char for char in name.lower() if char.isalnum())


# pydantic speaks Python; params.yaml is written in YAML terms.
_PLAIN_MESSAGES = {
    "extra_forbidden": "unknown key",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
}


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = _PLAIN_MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
    return f"{key}: {message}" if key else message  # cross-key checks name their keys


def parse_params(
    data: Any,
    source: str = DEFAULT_PARAMS,
    source_of: Callable[[Sequence[str | int]], str] | None = None,
) -> Params:
    """Validate a parsed YAML document; raise ConfigError naming the file and the first bad key.

    `source_of` names the file a key came from, when a model's params merge two files."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    data = bot_sections(data, source, source_of)
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(err) for err in errors]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        where = source_of(errors[0]["loc"]) if source_of is not None else source
        raise ConfigError(f"{where}: {problems[0]}{more}") from None


# Bot sections: strict inside. Any other top-level key is another tool's (DVC stages keep their
# `train:`, `prepare:`... here) and is left alone (docs/configuration.md, "params.yaml").
BOT_SECTIONS = ("register_model", "promote_model", "inference", "promotion")


def bot_sections(
    data: Mapping[str, Any],
    source: str = DEFAULT_PARAMS,
    source_of: Callable[[Sequence[str | int]], str] | None = None,
) -> dict[str, Any]:
    """The bot's own sections of a params document; a key that reads as a misspelt section
    name of the bot (`promtion:`) is an error, since ignoring it would drop its rules."""
    for key in data:
        if key in BOT_SECTIONS or not isinstance(key, str):
            continue
        near = difflib.get_close_matches(key.lower(), BOT_SECTIONS, n=1, cutoff=0.85)
        if near:
            where = source_of((key,)) if source_of is not None else source
            raise ConfigError(
                f"{where}: {key}: unknown section; did you mean {near[0]}? (other top-level "
                "sections are left to other tools)"
            )
    return {key: value for key, value in data.items() if key in BOT_SECTIONS}


def load_params(path: str | Path | None = None) -> Params:
    """Read params.yaml: a missing *default* file means defaults, a missing named one an error."""
    explicit = path is not None
    file = Path(path if path is not None else DEFAULT_PARAMS)
    if not file.exists():
        if explicit:
            raise ConfigError(f"{file}: no such file")
        log.debug("no %s here; using the built-in defaults", file)
        return Params()
    return parse_params(read_yaml(file), str(file))


def read_yaml(file: Path) -> Any:
    """One YAML document; every way it cannot be read is one ConfigError naming the file."""
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        what = f" ({problem})" if problem else ""
        raise ConfigError(f"{file}: not valid YAML{where}{what}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{file}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line})"
        ) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML keeps the last one silently; DVC fails)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # `<<: *anchor` merges may legitimately repeat keys
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)
