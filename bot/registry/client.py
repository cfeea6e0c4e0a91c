"""The MLflow Model Registry, as promotion-bot needs it. The only module that imports MLflow.

MLflow is inconsistent in ways that matter here, and this layer hides that:
- a version number is a `str` over REST and an `int` with a direct `sqlite:///` URI: always int;
- `get_model_version_by_alias` on a missing alias raises INVALID_PARAMETER_VALUE (not
  RESOURCE_DOES_NOT_EXIST): a missing alias is `None`;
- `search_model_versions` leaves `aliases` empty: aliases come from the registered model;
- the REST client retries for minutes by default: CI commands get a bounded budget.
"""

from __future__ import annotations

import logging
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bot.errors import ConfigError, NotFoundError, RegistryError
from bot.registry.model_state import Head, ModelState, compact_json, history_value
from bot.registry.records import HistoryEntry
from bot.registry.tags import (
    HISTORY_TAG,
    PENDING_TAG,
    REQUESTED_IN_TAG,
)
from bot.registry.versions import RunInfo, RunRecord, VersionInfo
from bot.signing import KEY_VARIABLE, Keys
from bot.urls import redact_url, redact_urls_in

log = logging.getLogger(__name__)

# Bounded retries: about 3 s of back-off and a 10 s timeout per call instead of MLflow's minutes.
# Retry-After is not obeyed: urllib3 sleeps whatever a 503 asks for, uncapped (an hour, twice).
_BOUNDED_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
    # Finishing a run would otherwise print its link to stdout, after one more read of the run.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}
# MLflow's own limits (mlflow/utils/validation.py): params and tags per log_batch call.
_PER_BATCH = 100

HISTORY_LIMIT = 200  # entries kept on the model; older ones drop off (tag values are bounded)
# MLflow validates 100k characters, but its SQL stores keep registered-model tag values in
# VARCHAR(5000): PostgreSQL and MySQL refuse anything longer. The history must fit in that.
HISTORY_MAX_CHARS = 5000
HISTORY_REASON_CHARS = 500  # the full reason stays in the thread; the tag keeps its start
_NOT_FOUND_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}
_REFUSED = {"PERMISSION_DENIED", "UNAUTHENTICATED"}  # MLflow's basic-auth app: 403 and 401
# MLflow's "API request to <full URI, password included> failed with [timeout ]exception ...".
_GAVE_UP = re.compile(r"failed with (timeout )?exception")
_RUN_ID = re.compile(r"[0-9A-Za-z_-]+")  # also what makes an id safe inside a search filter


class Registry:
    """A thin, normalising wrapper around `mlflow.MlflowClient`."""

    def __init__(self, tracking_uri: str, keys: Keys | None = None) -> None:
        for key, value in _BOUNDED_HTTP.items():
            os.environ.setdefault(key, value)
        # MLflow's own INFO lines ("Creating initial MLflow database tables...") are noise here.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        from mlflow import MlflowClient  # the one place MLflow is imported

        self.tracking_uri = tracking_uri
        self.keys = keys  # the bot's signing key (docs/security.md); None: only reads
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._models = _registry_client(self._client)
        log.info("registry at %s", redact_url(tracking_uri))

    # --- error translation -------------------------------------------------------------------
    @contextmanager
    def _call(self, what: str) -> Iterator[None]:
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            if exc.error_code in _NOT_FOUND_CODES:
                raise NotFoundError(f"{what}: not found in the registry") from None
            if exc.error_code in _REFUSED:
                raise RegistryError(f"{what}: {_refused(exc.error_code, what)}") from None
            if _GAVE_UP.search(exc.message or ""):  # the REST client gave up (or timed out)
                raise RegistryError(
                    f"{what}: the registry at {redact_url(self.tracking_uri)} is unreachable"
                ) from None
            raise RegistryError(
                f"{what}: the registry at {redact_url(self.tracking_uri)} failed "
                f"({exc.error_code}: {_first_line(exc.message)})"
            ) from None
        except OSError as exc:  # requests' ConnectionError is an OSError
            raise RegistryError(
                f"{what}: the registry at {redact_url(self.tracking_uri)} is unreachable "
                f"({type(exc).__name__})"
            ) from None

    # --- reads ---------------------------------------------------------------------------------
    def model_exists(self, name: str) -> bool:
        try:
            self._model(name)
        except NotFoundError:
            return False
        return True

    def _model(self, name: str) -> Any:
        with self._call(f"model {name!r}"):
            return self._models.get_registered_model(name)

    def state(self, name: str) -> ModelState:
        """Aliases and tags of a registered model in one call (empty if it does not exist)."""
        try:
            model = self._model(name)
        except NotFoundError:
            return ModelState({}, {}, self.keys, name)
        aliases = {alias: int(version) for alias, version in (model.aliases or {}).items()}
        return ModelState(aliases, dict(model.tags or {}), self.keys, name)

    def aliases(self, name: str) -> dict[str, int]:
        """alias -> version of a registered model ({} if the model does not exist)."""
        return self.state(name).aliases

    def version(self, name: str, version: int | str) -> VersionInfo:
        with self._call(f"{name} version {version}"):
            mv = self._models.get_model_version(name, str(version))
        return _version_info(mv)

    def version_by_alias(self, name: str, alias: str) -> VersionInfo | None:
        number = self.aliases(name).get(alias)
        return None if number is None else self.version(name, number)

    def versions_requested_in(self, name: str, url: str) -> list[int]:
        """The versions of `name` the bot bound to the thread at `url` (`_bound_to`)."""
        found = self._bound_to(f"name='{name}'", url, f"versions of {name} requested in {url}")
        return sorted(info.version for info in found)

    def models_requested_in(self, names: Sequence[str], url: str) -> list[str]:
        """Which of the models `names` has a version the bot bound to the thread at `url`: one
        search, whatever the number of models (model names hold no quote: `config_checks`)."""
        if not names:
            return []
        listed = ", ".join(f"'{name}'" for name in names)
        found = self._bound_to(f"name IN ({listed})", url, f"models requested in {url}")
        return sorted({info.model for info in found})

    def _bound_to(self, scope: str, url: str, what: str) -> list[VersionInfo]:
        """The versions within `scope` (a filter on names) whose request binding names `url`
        and holds its seal (docs/security.md): one search.

        The tag is `<url>|<seal>`, so the filter is a LIKE, where `_` and `%` in the URL match
        any character: the URL is compared here again, exactly. A binding whose seal does not
        hold is no evidence and is left out (logged, never with its seal).
        """
        if not url or "'" in url or "\\" in url:  # MLflow's filter syntax has no escape
            return []
        query = f"{scope} and tags.`{REQUESTED_IN_TAG}` LIKE '{url}|%'"
        with self._call(what):
            found = [_version_info(mv) for mv in self._models.search_model_versions(query)]
        bound = []
        for info in [info for info in found if info.requested_in == url]:
            problem = info.request_binding_problem(self.keys) if self.keys else "no key to check"
            if problem:
                log.warning(
                    "%s v%s names %s as its request, but the bot did not write that: %s",
                    info.model, info.version, url, problem,
                    extra={"model": info.model, "version": info.version},
                )  # fmt: skip
                continue
            bound.append(info)
        return bound

    def version_by_run(self, name: str, run_id: str) -> VersionInfo | None:
        if not _RUN_ID.fullmatch(run_id):
            raise RegistryError(f"run id {run_id!r} is not a valid MLflow run id")
        with self._call(f"versions of {name} from run {run_id}"):
            found = self._models.search_model_versions(f"name='{name}' and run_id='{run_id}'")
        live = [mv for mv in found if getattr(mv, "status", "READY") != "FAILED_REGISTRATION"]
        if not live:
            return None
        return self.version(name, min(int(mv.version) for mv in live))

    def run(self, run_id: str) -> RunInfo:
        with self._call(f"run {run_id}"):
            run = self._client.get_run(run_id)
        return _run_info(run)

    def newest_versions(self, name: str, limit: int) -> list[VersionInfo]:
        """The `limit` highest-numbered versions of `name`, newest first: one search call."""
        with self._call(f"the newest versions of {name}"):
            found = self._models.search_model_versions(
                f"name='{name}'", max_results=limit, order_by=["version_number DESC"]
            )
        return [_version_info(mv) for mv in found]

    def runs_in(self, experiment_ids: Sequence[str], run_ids: Sequence[str]) -> list[RunInfo]:
        """The runs among `run_ids` that live in `experiment_ids`: one search call.

        Runs of other experiments, deleted runs and ids that are no MLflow run id are left out.
        """
        wanted = sorted({run_id for run_id in run_ids if _RUN_ID.fullmatch(run_id)})
        if not wanted or not experiment_ids:
            return []
        listed = ", ".join(f"'{run_id}'" for run_id in wanted)
        with self._call(f"{len(wanted)} runs"):
            found = self._client.search_runs(
                list(experiment_ids),
                filter_string=f"attributes.run_id IN ({listed})",
                max_results=len(wanted),
            )
        return [_run_info(run) for run in found]

    # --- writes --------------------------------------------------------------------------------
    def ensure_model(self, name: str) -> None:
        if not self.model_exists(name):
            try:
                with self._call(f"create model {name!r}"):
                    self._client.create_registered_model(name)
            except RegistryError:
                # Two registrations racing: the other one created it, which is what we want.
                if not self.model_exists(name):
                    raise

    def create_version(self, name: str, source: str, run_id: str) -> VersionInfo:
        with self._call(f"create a version of {name} from run {run_id}"):
            mv = self._client.create_model_version(name, source, run_id=run_id)
        return _version_info(mv)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        with self._call(f"set {name}@{alias} -> {version}"):
            self._models.set_registered_model_alias(name, alias, str(version))

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> None:
        with self._call(f"tag {name} version {version}"):
            self._models.set_model_version_tag(name, str(version), key, value)

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        with self._call(f"tag model {name}"):
            self._models.set_registered_model_tag(name, key, value)

    def set_run_tag(self, run_id: str, key: str, value: str) -> None:
        with self._call(f"tag run {run_id}"):
            self._client.set_tag(run_id, key, value)

    def delete_model_tag(self, name: str, key: str) -> None:
        try:
            with self._call(f"untag model {name}"):
                self._models.delete_registered_model_tag(name, key)
        except NotFoundError:
            pass

    def log_run(self, experiment: str, metrics: dict[str, float], tags: dict[str, str]) -> str:
        """A finished run with `metrics`: the demo's stand-in for a training job."""
        with self._call(f"log a run in {experiment!r}"):
            found = self._client.get_experiment_by_name(experiment)
            experiment_id = (
                found.experiment_id if found else self._client.create_experiment(experiment)
            )
            run = self._client.create_run(experiment_id, tags=tags)
            for key, value in metrics.items():
                self._client.log_metric(run.info.run_id, key, value)
            self._client.set_terminated(run.info.run_id)
        return str(run.info.run_id)

    # --- runs of the audit ledger (bot.ledger.store; docs/design.md, "The ledger") -------------
    def experiment_id(self, name: str, create: bool = True) -> str:
        """The id of the experiment `name`, created when missing ("" when missing and not
        `create`); a deleted one is an error."""
        with self._call(f"experiment {name!r}"):
            found = self._client.get_experiment_by_name(name)
        if found is None and not create:
            return ""
        if found is None:
            try:
                with self._call(f"create experiment {name!r}"):
                    return str(self._client.create_experiment(name))
            except RegistryError:
                with self._call(f"experiment {name!r}"):  # created meanwhile by another process
                    found = self._client.get_experiment_by_name(name)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise RegistryError(
                f"the experiment {name!r} is deleted: restore it (`mlflow experiments restore "
                f"--experiment-id {found.experiment_id}`) or name another one"
            )
        return str(found.experiment_id)

    def create_run(
        self, experiment_id: str, start_ms: int, name: str, tags: Mapping[str, str]
    ) -> str:
        """A new run (status RUNNING) that started at `start_ms`: one call."""
        with self._call(f"create a run in experiment {experiment_id}"):
            run = self._client.create_run(
                experiment_id, start_time=start_ms, tags=dict(tags), run_name=name
            )
        return str(run.info.run_id)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        """Log `params` on the run: one call per 100. A param keeps its first value for good:
        MLflow refuses another value, and the same value again is a no-op."""
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for start in range(0, len(items), _PER_BATCH):
            with self._call(f"log params of run {run_id}"):
                self._client.log_batch(run_id, params=items[start : start + _PER_BATCH])

    def finish_run(self, run_id: str, status: str = "FINISHED", end_ms: int | None = None) -> None:
        with self._call(f"end run {run_id}"):
            self._client.set_terminated(run_id, status=status, end_time=end_ms)

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str,
        *,
        order_by: Sequence[str] = (),
        max_results: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[RunRecord], str]:
        """One page of runs, deleted ones included; the token of the next page ("" at the end)."""
        from mlflow.entities import ViewType

        with self._call("search runs"):
            page = self._client.search_runs(
                list(experiment_ids),
                filter_string=filter_string,
                run_view_type=ViewType.ALL,
                max_results=max_results,
                order_by=list(order_by),
                page_token=page_token,
            )
        token = page.token or ""
        # MLflow's sqlite store hands the token back as bytes (its REST server, as str): as str,
        # `str(b"...")` would be a token no store reads
        if isinstance(token, bytes):
            token = token.decode("ascii")
        return [_run_record(run) for run in page], str(token)

    # --- audit record (docs/design.md, "Registry tags") ----------------------------------------
    def history(self, name: str) -> tuple[HistoryEntry, ...]:
        return self.state(name).history

    def append_history(
        self,
        name: str,
        entry: HistoryEntry,
        known: Sequence[HistoryEntry] | None = None,
        head: Head | None = None,
    ) -> None:
        """Append `entry`; `known` is the history as just read under the model lock, if any;
        `head`: the ledger entry of the change, the chain's head now. Signed.

        Entries already there are written back exactly as they were stored.
        """
        stored = dict(entry.stored)
        reason = stored.get("reason")
        if isinstance(reason, str) and len(reason) > HISTORY_REASON_CHARS:
            stored["reason"] = reason[: HISTORY_REASON_CHARS - 1] + "…"
        current = self.history(name) if known is None else known
        entries = [*(old.stored for old in current), stored][-HISTORY_LIMIT:]
        keys = self._signer()
        raw = history_value(keys, name, entries, head)
        while len(raw) > HISTORY_MAX_CHARS and len(entries) > 1:  # oldest entries drop off
            entries = entries[1:]
            raw = history_value(keys, name, entries, head)
        self.set_model_tag(name, HISTORY_TAG, raw)

    def pending(self, name: str) -> HistoryEntry | None:
        return self.state(name).pending

    def set_pending(self, name: str, entry: HistoryEntry, ledger_key: str = "") -> None:
        """The intent of a change: its history entry, and the key of the ledger run it begins,
        signed with its model: an intent is evidence that a change of this model is in flight
        (docs/security.md)."""
        stored = {**entry.stored, "model": name}
        if ledger_key:
            stored["ledger"] = ledger_key
        self.set_model_tag(name, PENDING_TAG, compact_json(self._signer().signed(stored)))

    def _signer(self) -> Keys:
        if self.keys is None:
            raise ConfigError(f"{KEY_VARIABLE}: not set; the registry client cannot sign")
        return self.keys

    def clear_pending(self, name: str) -> None:
        self.delete_model_tag(name, PENDING_TAG)

    # --- links for people ----------------------------------------------------------------------
    def ui_base(self) -> str:
        """The MLflow UI base URL ('' for a local file/sqlite registry, which has no UI)."""
        parts = urlsplit(self.tracking_uri)
        if parts.scheme not in ("http", "https"):
            return ""
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))

    def run_url(self, run: RunInfo) -> str:
        base = self.ui_base()
        return f"{base}/#/experiments/{run.experiment_id}/runs/{run.run_id}" if base else ""

    def version_url(self, name: str, version: int) -> str:
        base = self.ui_base()
        return f"{base}/#/models/{name}/versions/{version}" if base else ""


def _registry_client(client: Any) -> Any:
    """MLflow's registry client under `MlflowClient`, whose every write first re-reads the model
    to check it is not a prompt (7 extra round trips per champion change). The bot only touches
    the registered model it is configured for; if the private accessor ever goes away, the
    public client is used."""
    try:
        return client._get_registry_client()
    except Exception:  # pragma: no cover - an MLflow without the accessor
        return client


def _metric(value: Any) -> float:
    """A metric as logged: MLflow's SQL stores keep +-inf as +-sys.float_info.max."""
    number = float(value)
    return math.copysign(math.inf, number) if abs(number) == sys.float_info.max else number


def _refused(code: str, what: str) -> str:
    """MLflow's 401/403 as the permission the account lacks (docs/security.md, "Accounts")."""
    account = os.environ.get("MLFLOW_TRACKING_USERNAME", "")
    if code == "UNAUTHENTICATED":
        return (
            "the registry refused the credentials (401): set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) of the bot's MLflow account"
        )
    who = f"the account {account!r}" if account else "this account"
    if what.startswith(("create model", "set ", "tag ", "untag ", "create a version")):
        needs = "MANAGE on the registered model"
    elif what.startswith(("create experiment", "create a run", "log ", "end run")):
        needs = "MANAGE on the ledger experiment"
    else:
        needs = "READ on what it reads"
    return (
        f"the registry refused {who} (403): it needs {needs} "
        "(`promotion-bot permissions --check` lists what the bot's account lacks)"
    )


def _first_line(text: str) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return redact_urls_in(line)[:200]  # a server message may quote a URI with a password


def _run_info(run: Any) -> RunInfo:
    return RunInfo(
        run_id=run.info.run_id,
        experiment_id=str(run.info.experiment_id),
        metrics={key: _metric(value) for key, value in run.data.metrics.items()},
        tags={k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        params=dict(run.data.params),
    )


def _run_record(run: Any) -> RunRecord:
    return RunRecord(
        run_id=str(run.info.run_id),
        start_ms=int(run.info.start_time or 0),
        status=str(run.info.status or ""),
        deleted=run.info.lifecycle_stage == "deleted",
        params=dict(run.data.params),
        tags=dict(run.data.tags),
    )


def _version_info(mv: Any) -> VersionInfo:
    return VersionInfo(
        model=mv.name,
        version=int(mv.version),
        run_id=mv.run_id or "",
        source=mv.source or "",
        status=str(mv.status or "READY"),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        tags=dict(mv.tags or {}),
        created_at_ms=int(mv.creation_timestamp or 0),
    )
