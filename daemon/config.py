"""Configuration: one TOML file, `BEATWATCH_<SECTION>__<KEY>` environment overrides, validated once.

Every key has a default here, so an empty file is a valid config; unknown
keys are refused so a typo never silently does nothing. Relative paths are
resolved against the config file's folder, as users expect when systemd
starts the daemon from `/`. models.dir left unset is the folder `make install`
built the tag models into, wherever the command runs: a default relative to
the working directory left tags silently empty outside the checkout.
"""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .admission import FollowSymlinks
from .config_lookup import locate
from .library_paths import NAME

ENV_PREFIX = "BEATWATCH_"
# The checkout `make install` installs (editable) and builds the tag models in.
PROJECT_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_IGNORE = [
    "*.part", "*.tmp", "*.crdownload", "*.partial", "*.download", ".*", "~$*", "*~",
    "Thumbs.db", "desktop.ini", "*.beatwatch.json", "*.beatwatch.png",
]


# An idle worker's resident memory before its first job, per inference.mode, with room for that job's first
# allocations: measured at ~410 MB with every network loaded in the worker and ~125 MB without (2026-12-02).
# A jobs.memory_mb below it would kill every worker at its first job, so it is refused instead.
IDLE_WORKER_MB = {"in_worker": 512, "process": 256}


class ConfigError(Exception):
    """A config file or value that cannot be used; the message names the file, key and value."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Inbox(Section):
    path: Path = Path("inbox")
    after: Literal["leave", "move"] = "leave"
    follow_symlinks: FollowSymlinks = "inside"


class Store(Section):
    url: str = "sqlite:///beatwatch.db"
    # Empty: the machine's own name. It starts every lease owner and status row, followed by ':', so none may hold one.
    host_name: str = Field("", pattern=r"^[A-Za-z0-9._-]{0,64}$")

    def host(self) -> str:
        """This daemon's name among the hosts sharing the database."""
        return self.host_name or socket.gethostname().replace(":", "-")


class Library(Section):
    """Named roots of the shared library, each as this host mounts it: files under one are stored relative to it
    (library_paths.py), so hosts that mount it at different paths share rows. Empty: paths are stored absolute."""

    roots: dict[str, Path] = Field(default_factory=dict)

    @field_validator("roots")
    @classmethod
    def _named(cls, value: dict[str, Path]) -> dict[str, Path]:
        for name in value:
            if not NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a root name (1-64 letters, digits, . _ -)")
        return value


class Output(Section):
    dir: Path | None = None
    plots: bool = False
    write_tags: bool = False
    tag_key: Literal["standard", "camelot", "open_key"] = "standard"
    tag_replaygain: bool = False

    @field_validator("dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value == "" else value


class Watch(Section):
    settle_s: float = Field(2.0, ge=0)
    unclosed_settle_s: float = Field(120.0, ge=0)
    rescan_interval_s: float = Field(300.0, gt=0)
    polling: bool = False
    ignore: list[str] = Field(default_factory=lambda: list(DEFAULT_IGNORE))


class Jobs(Section):
    max_attempts: int = Field(3, ge=1)
    timeout_s: float = Field(900.0, gt=0)
    memory_mb: int = Field(2048, ge=128)
    max_duration_s: float = Field(6 * 3600.0, gt=0)
    lease_s: float = Field(60.0, gt=0)


class Workers(Section):
    count: int = Field(0, ge=0)
    max_jobs_per_child: int = Field(50, ge=1)
    idle_exit_s: float = Field(300.0, ge=0)


class Resources(Section):
    max_cpu_percent: float = Field(90.0, gt=0, le=100)
    min_available_mb: int = Field(512, ge=0)
    max_temp_c: float = Field(90.0, gt=0)
    pause_on_battery: bool = False
    nice: int = Field(10, ge=0, le=19)


class Inference(Section):
    device: Literal["auto", "cpu", "cuda"] = "auto"
    mode: Literal["process", "in_worker"] = "in_worker"
    max_batch: int = Field(16, ge=1)
    max_wait_ms: float = Field(20.0, ge=0)


# The beat tracker's tempo range unless the config narrows it (analysis/rhythm/beats.py MIN_BPM, MAX_BPM).
DEFAULT_MIN_BPM = 55.0
DEFAULT_MAX_BPM = 215.0
# The narrowest tempo range taken: the tracker needs room for a tempo to move within it.
MIN_BPM_SPAN = 10.0


class Analysis(Section):
    chunk_s: float = Field(300.0, ge=30)
    min_bpm: float = Field(DEFAULT_MIN_BPM, ge=30, le=250)
    max_bpm: float = Field(DEFAULT_MAX_BPM, ge=60, le=300)

    @field_validator("max_bpm")
    @classmethod
    def _above_min_bpm(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("min_bpm")
        if low is not None and value < low + MIN_BPM_SPAN:
            raise ValueError(f"must be at least analysis.min_bpm + {MIN_BPM_SPAN:g} ({low + MIN_BPM_SPAN:g})")
        return value


class Models(Section):
    dir: Path = PROJECT_MODELS_DIR


class Shutdown(Section):
    grace_s: float = Field(30.0, ge=0)


class Hooks(Section):
    """Programs run after a job, as an argument list: never through a shell, so no file name is ever a command."""

    on_done: list[str] = Field(default_factory=list)
    on_failed: list[str] = Field(default_factory=list)
    timeout_s: float = Field(60.0, gt=0)

    @field_validator("on_done", "on_failed")
    @classmethod
    def _program_first(cls, value: list[str]) -> list[str]:
        if value and not value[0].strip():
            raise ValueError("the first element must name the program to run")
        return value


class Settings(BaseSettings):
    """The whole configuration; `load` is the way to build one."""

    model_config = SettingsConfigDict(env_prefix="BEATWATCH_", env_nested_delimiter="__", extra="forbid")

    inbox: Inbox = Inbox()
    store: Store = Store()
    library: Library = Library()
    output: Output = Output()
    watch: Watch = Watch()
    jobs: Jobs = Jobs()
    workers: Workers = Workers()
    resources: Resources = Resources()
    inference: Inference = Inference()
    analysis: Analysis = Analysis()
    models: Models = Models()
    shutdown: Shutdown = Shutdown()
    hooks: Hooks = Hooks()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which arrives as init arguments.
        return env_settings, init_settings


def default_config_path() -> Path | None:
    """The file config_lookup finds without --config; None means the built-in defaults."""
    return locate().path


def load(path: str | os.PathLike | None = None) -> Settings:
    """Read, validate and resolve a config; raises ConfigError with one readable sentence."""
    located = locate(path)
    path = located.path
    data: dict = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found ({located.source})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config file ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    _check_memory(settings, str(path) if path is not None else "config")
    resolved = resolve_paths(settings, located.base.resolve())
    _check_roots(resolved, str(path) if path is not None else "config")
    return resolved


def _check_memory(settings: Settings, where: str) -> None:
    need = IDLE_WORKER_MB[settings.inference.mode]
    if settings.jobs.memory_mb < need:
        raise ConfigError(f"{where}: jobs.memory_mb = {settings.jobs.memory_mb} is below the {need} MB an idle "
                          f"worker needs with inference.mode = {settings.inference.mode!r}; every job would be "
                          "killed")


def _check_roots(settings: Settings, where: str) -> None:
    """One root inside another would give a file two stored names, one per root, and so two rows."""
    roots = sorted(settings.library.roots.items(), key=lambda item: len(item[1].parts))
    for i, (name, root) in enumerate(roots):
        for other, below in roots[i + 1:]:
            if below == root or below.is_relative_to(root):
                raise ConfigError(f"{where}: library.roots: {other!r} ({below}) lies inside {name!r} ({root}); "
                                  "a file must belong to one root")


def check_usable(settings: Settings, own_folder: Path | None = None) -> list[str]:
    """What `run` (and a reload) would fail on later, said now as a ConfigError: a folder it must create or use
    that is a file, or lies under one, and an inbox whose own folder is missing too (a typo'd path would
    otherwise be created and watched without a word). `config check` calls it too, so a config it accepts is
    one `run` takes. Returns the warnings worth a line: an inbox that `run` will create. `own_folder` is the
    data folder the built-in defaults use, which `run` creates itself."""
    folders = {"inbox.path": settings.inbox.path, "output.dir": settings.output.dir}
    database = _sqlite_file(settings.store.url)
    if database is not None:
        folders["store.url"] = database.parent
    for key, folder in folders.items():
        problem = _folder_problem(folder) if folder is not None else None
        if problem:
            raise ConfigError(f"{key}: {problem}")
    inbox = settings.inbox.path
    warnings = _outside_roots(settings)
    if os.path.lexists(inbox):
        return warnings
    if not inbox.parent.is_dir() and inbox.parent != own_folder:
        raise ConfigError(f"inbox.path: {inbox} does not exist, nor does the folder it would be in ({inbox.parent}); "
                          "a typo? Create that folder first")
    return warnings + [f"inbox.path: {inbox} does not exist yet; `beatwatch run` creates it"]


def _outside_roots(settings: Settings) -> list[str]:
    """With library roots set, an inbox under none of them is stored by this host's absolute paths, which other
    hosts cannot resolve: allowed (a local inbox), but worth a line."""
    roots = settings.library.roots
    if not roots or any(settings.inbox.path.is_relative_to(root) for root in roots.values()):
        return []
    return [f"inbox.path: {settings.inbox.path} lies under no library.roots entry; its files are stored by this "
            "host's absolute paths"]


def _folder_problem(folder: Path) -> str | None:
    """Why `folder.mkdir(parents=True, exist_ok=True)` would fail, or None."""
    for existing in (folder, *folder.parents):
        if not os.path.lexists(existing):
            continue
        if not existing.is_dir():
            return f"{existing} is not a folder"  # a file, or a link to nowhere: mkdir would fail on either
        if existing != folder and not os.access(existing, os.W_OK | os.X_OK):
            return f"cannot create {folder}: {existing} is not writable"
        return None
    return None


def _describe(exc: ValidationError, path: Path | None) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    variable = _environment_variable(first["loc"])
    where = f"environment variable {variable}" if variable else str(path) if path is not None else "config"
    if first["type"] == "extra_forbidden":
        message = f"{where}: unknown key {key}"
    elif first["type"] == "missing":
        message = f"{where}: {key} is required"
    else:
        message = f"{where}: {key} = {first.get('input')!r} is invalid: {first['msg']}"
    more = exc.error_count() - 1
    return message + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def _environment_variable(loc: tuple) -> str | None:
    """The BEATWATCH_<SECTION>__<KEY> variable that set this value, when one did: that is what to fix, not the file."""
    if len(loc) < 2:
        return None
    wanted = f"{ENV_PREFIX}{loc[0]}__{loc[1]}".upper()
    return next((name for name in os.environ if name.upper() == wanted), None)


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make every path absolute against base, including a relative SQLite file in store.url."""
    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    update = {
        "inbox": settings.inbox.model_copy(update={"path": absolute(settings.inbox.path)}),
        "models": settings.models.model_copy(update={"dir": absolute(settings.models.dir)}),
        "output": settings.output.model_copy(
            update={"dir": absolute(settings.output.dir) if settings.output.dir else None}),
        "store": settings.store.model_copy(update={"url": _resolve_sqlite_url(settings.store.url, base)}),
        "library": settings.library.model_copy(
            update={"roots": {name: absolute(root) for name, root in settings.library.roots.items()}}),
    }
    return settings.model_copy(update=update)


def _sqlite_file(url: str) -> Path | None:
    prefix = "sqlite:///"
    rest = url[len(prefix):].partition("?")[0] if url.startswith(prefix) else ""
    return Path(rest) if rest.startswith("/") else None


def _resolve_sqlite_url(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix):]
    if rest in ("", ":memory:") or rest.startswith("/"):
        return url
    return prefix + str((base / rest).resolve())


def effective_values(settings: Settings) -> dict[str, dict]:
    """Section → key → value, in the same shape as the TOML file, for `config check`."""
    return settings.model_dump(mode="json")
