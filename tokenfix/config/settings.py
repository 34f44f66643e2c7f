"""Configuration (docs/configuration.md): environment, then env files (`.env`), overridden by flags.

Every value remembers where it came from (a flag, an environment variable, a line of an env
file, the default), so `tokenfix config` can show it and an error can name the place to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    SettingsConfigDict,
    SettingsError,
)

from tokenfix.base.errors import BadInput
from tokenfix.base.identifiers import IDENTIFIER as _IDENTIFIER
from tokenfix.base.identifiers import QualifiedName
from tokenfix.config import env_file

_SERVER_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")
_MEMORY = re.compile(r"^\s*(\d+)\s*(kB|MB|GB|TB)?\s*$")
_MS_PER_UNIT = {
    "us": 0.001,
    "ms": 1,
    "": 1,
    "s": 1000,
    "min": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
}
_KB_PER_UNIT = {"": 1, "kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}
# PostgreSQL keeps timeouts in milliseconds and work_mem in kilobytes, both as a C int.
PG_INT_MAX = 2_147_483_647


def server_duration_ms(text: str) -> float:
    """A duration in PostgreSQL's syntax (`30s`, `5min`, `500` = ms) in milliseconds."""
    found = _SERVER_DURATION.match(text)
    if not found:
        raise ValueError(
            f"{text!r} is not a PostgreSQL duration such as '30s', '5min' or '500' (ms)"
        )
    return float(found.group(1)) * _MS_PER_UNIT[found.group(2) or ""]


def _table(value: Any) -> QualifiedName:
    return value if isinstance(value, QualifiedName) else QualifiedName.parse(str(value))


def _column(value: Any) -> QualifiedName:
    if isinstance(value, QualifiedName):
        return value
    return QualifiedName.parse(str(value), max_parts=1)


# NoDecode: these come from the environment as plain text, not JSON.
TableName = Annotated[QualifiedName, NoDecode, BeforeValidator(_table)]
ColumnName = Annotated[QualifiedName, NoDecode, BeforeValidator(_column)]


def _actions(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    actions = tuple(str(item).strip() for item in items if str(item).strip())
    if not actions:
        raise ValueError("needs at least one action name")
    return actions


ActionList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_actions)]


def exact_amount(value: Any) -> int | Decimal:
    """An amount as given (`1000`, `12.5`): an int when whole, else an exact Decimal."""
    if isinstance(value, bool):
        raise ValueError("is not a number")
    if isinstance(value, int):
        return value
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return int(number) if number == number.to_integral_value() else number


OriginKind = Literal["default", "flag", "argument", "environment", "file", "found"]


@dataclass(frozen=True)
class Origin:
    """Where a setting's value came from."""

    kind: OriginKind
    name: str = ""
    """The variable (environment, file), the flag (`--batch-size`) or the keyword argument."""
    path: Path | None = None
    """The env file, for kind "file"; the file picked up, for kind "found"."""

    def __str__(self) -> str:
        """What to change, as an error message names it: `DATABASE_URL in /etc/x/.env`."""
        if self.kind == "file":
            return f"{self.name} in {self.path}"
        return self.name or "the default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TOKENFIX_",
        # Env files are read by load_settings() alone (./.env or the --env-file ones, never
        # both): a default here would be read again for every field the files left unset.
        env_file=None,
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # SecretStr: a password in the URL never shows in a repr, a log or a traceback.
    # The tool's own name first: with both set, TOKENFIX_DATABASE_URL wins over the app's.
    database_url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("TOKENFIX_DATABASE_URL", "DATABASE_URL"),
    )
    starting_balance: Annotated[int | Decimal, BeforeValidator(exact_amount)] = 0
    mapping: Path | None = None
    """A mapping file (docs/mapping.md): where the balances and the ledger live."""
    usage_table: TableName = Field(default=QualifiedName(["token_usage"]), validate_default=True)
    profiles_table: TableName = Field(
        default=QualifiedName(["user_profiles"]), validate_default=True
    )
    overrides_table: TableName = Field(
        default=QualifiedName(["ai_action_token_overrides"]), validate_default=True
    )
    remaining_column: ColumnName = Field(
        default=QualifiedName(["vibe_assistant_tokens_remaining"]), validate_default=True
    )
    used_column: ColumnName = Field(
        default=QualifiedName(["vibe_assistant_tokens_used"]), validate_default=True
    )
    grant_action: ActionList = Field(default=("admin_grant",), validate_default=True)
    deduct_action: ActionList = Field(default=("admin_deduct",), validate_default=True)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    max_changes: int = Field(default=1000, ge=0)
    audit_schema: str = "tokenfix"
    statement_timeout: str = "5min"
    lock_timeout: str = "5s"
    # Every transaction the tool opens ends within this long of the tool going quiet (stopped,
    # suspended, partitioned): the server then drops it and the app's rows are free
    # (docs/safety.md).
    idle_timeout: str = "30s"
    # The all-users aggregate needs a hash table per user; with PostgreSQL's default 4MB the
    # planner walks the user_id index instead, about 6x slower (BENCHMARKS.md).
    work_mem: str = "64MB"
    connect_timeout: int = Field(default=10, ge=1)
    # Seconds a confirmation prompt waits for an answer: the lease is held meanwhile, and a
    # forgotten terminal must not lock every other run out.
    prompt_timeout: int = Field(default=120, ge=1)
    # Seconds the writer lease lives unless renewed: how long a killed run keeps others out.
    lease_ttl: int = Field(default=60, ge=2, le=3600)

    # Set by load_settings(); a Settings built directly knows only its field values.
    _origins: dict[str, Origin] = PrivateAttr(default_factory=dict)
    _env_files: tuple[Path, ...] = PrivateAttr(default=())

    @field_validator("database_url")
    @classmethod
    def _one_at_sign(cls, value: SecretStr | None) -> SecretStr | None:
        from tokenfix.config.redact import unescaped_at

        if value is not None and unescaped_at(value.get_secret_value()):
            # Never a piece of it in the message: where libpq would cut it is anyone's guess.
            raise ValueError(
                "the URL holds more than one '@', so its password cannot be told from its "
                "host: percent-encode every '@' but the one before the host as %40 (in a "
                "password, ':' '/' '?' '#' '%' too, as %3A %2F %3F %23 %25)"
            )
        return value

    @field_validator("audit_schema")
    @classmethod
    def _audit_schema_is_own(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain schema name")
        if value.lower() in {"public", "pg_catalog", "information_schema"} or value.startswith(
            "pg_"
        ):
            raise ValueError(f"the audit trail needs a schema of its own, not {value!r}")
        return value

    @field_validator("statement_timeout", "lock_timeout", "idle_timeout")
    @classmethod
    def _server_duration(cls, value: str) -> str:
        milliseconds = server_duration_ms(str(value))
        if milliseconds > PG_INT_MAX:
            raise ValueError(f"{value!r} is longer than PostgreSQL allows (about 24 days)")
        return str(value).strip()

    @field_validator("idle_timeout")
    @classmethod
    def _at_least_a_second(cls, value: str) -> str:
        if server_duration_ms(value) < 1000:
            raise ValueError(f"{value!r} is too short: at least 1s")
        return value

    @field_validator("work_mem")
    @classmethod
    def _memory(cls, value: str) -> str:
        found = _MEMORY.match(str(value))
        if not found:
            raise ValueError(f"{value!r} is not a PostgreSQL memory size such as '64MB'")
        kilobytes = int(found.group(1)) * _KB_PER_UNIT[found.group(2) or ""]
        if not 64 <= kilobytes <= PG_INT_MAX:
            raise ValueError(f"{value!r} is outside what PostgreSQL allows (64kB to 2047GB)")
        return str(value).strip()

    @model_validator(mode="after")
    def _grant_and_deduct_disjoint(self) -> Settings:
        overlap = set(self.grant_action) & set(self.deduct_action)
        if overlap:
            raise ValueError(
                "TOKENFIX_GRANT_ACTION and TOKENFIX_DEDUCT_ACTION share "
                f"{', '.join(sorted(overlap))}; an action is either a grant or a deduct"
            )
        return self

    @property
    def special_actions(self) -> tuple[str, ...]:
        """Actions that are never charges (and never priced by overrides)."""
        return self.grant_action + self.deduct_action

    def origin(self, name: str) -> Origin:
        """Where the value of setting `name` came from."""
        found = self._origins.get(name)
        if found is not None:
            return found
        return Origin("argument", name) if name in self.model_fields_set else Origin("default")

    @property
    def env_files(self) -> tuple[Path, ...]:
        """The env files that were read (that existed), in the order given."""
        return self._env_files


DEFAULT_ENV_FILE = Path(".env")


def variable_for(name: str) -> str:
    """The environment variable of setting `name` (`batch_size`: TOKENFIX_BATCH_SIZE)."""
    return f"TOKENFIX_{name.upper()}"


def _flag_for(name: str) -> str:
    return "--" + name.replace("_", "-")


class _EnvFileSource(EnvSettingsSource):
    """One env file's variables, already read (env_file.read), looked up as pydantic-settings
    looks up the environment's (prefix, aliases, case)."""

    def __init__(self, variables: dict[str, str | None]) -> None:
        self._variables = variables
        super().__init__(Settings)

    def _load_env_vars(self) -> dict[str, str | None]:
        return {name.lower(): value for name, value in self._variables.items()}


def _read_env_files(
    env_files: Sequence[str | os.PathLike[str]] | None,
) -> list[tuple[Path, EnvSettingsSource]]:
    """Each env file read once, as pydantic-settings reads one (a `<(…)` pipe can only be read
    once). Without `env_files`, ./.env if it exists; a file asked for that is missing is exit 2:
    a cron job whose settings file moved must not run on defaults."""
    if env_files is None:
        paths = [DEFAULT_ENV_FILE] if DEFAULT_ENV_FILE.is_file() else []
    else:
        paths = [Path(path) for path in env_files]
        for path in paths:
            if not path.exists() or path.is_dir():
                raise BadInput(
                    f"env file {path} not found",
                    hint="give the path of an existing file to --env-file",
                )
    return [(path.absolute(), _EnvFileSource(env_file.read(path))) for path in paths]


def _resolve(
    files: list[tuple[Path, EnvSettingsSource]], given: dict[str, Any], given_as: OriginKind
) -> tuple[dict[str, Any], dict[str, Origin]]:
    """Every setting's raw value and origin: given (flags), then the environment, then the
    env files, the later file first. The lookups are pydantic-settings' own (aliases, prefix,
    case), so the name found is the variable that was really read."""
    environment = EnvSettingsSource(Settings)
    sources: list[tuple[Path | None, EnvSettingsSource]] = [(None, environment), *reversed(files)]
    values: dict[str, Any] = {}
    origins: dict[str, Origin] = {}
    for name, field in Settings.model_fields.items():
        if name in given:
            values[name] = given[name]
            shown = _flag_for(name) if given_as == "flag" else name
            origins[name] = Origin(given_as, shown)
            continue
        origins[name] = Origin("default")
        aliases = field.validation_alias
        if isinstance(aliases, AliasChoices):
            # TOKENFIX_DATABASE_URL beats the app's DATABASE_URL wherever each is set (an
            # environment's DATABASE_URL must not send a run to the app's database when an
            # env file names the tool's own): name by name, each name in every source.
            found = _first_by_name([str(a) for a in aliases.choices], sources)
            if found is not None:
                values[name], origins[name] = found
            continue
        for path, source in sources:
            value, key, _ = source.get_field_value(field, name)
            if value is not None:
                values[name] = value
                variable = variable_for(name) if key == name else key.upper()
                kind: OriginKind = "environment" if path is None else "file"
                origins[name] = Origin(kind, variable, path)
                break
    return values, origins


def _first_by_name(
    names: list[str], sources: list[tuple[Path | None, EnvSettingsSource]]
) -> tuple[Any, Origin] | None:
    for variable in names:
        for path, source in sources:
            value = source.env_vars.get(variable.lower())
            if value is not None:
                kind: OriginKind = "environment" if path is None else "file"
                return value, Origin(kind, variable, path)
    return None


def _field_of(loc: tuple[int | str, ...]) -> str | None:
    if not loc:
        return None
    key = str(loc[0])
    for name, field in Settings.model_fields.items():
        aliases = field.validation_alias
        choices = aliases.choices if isinstance(aliases, AliasChoices) else [aliases]
        if key == name or key in choices:
            return name
    return None


def load_settings(
    *,
    env_files: Sequence[str | os.PathLike[str]] | None = None,
    given_as: Literal["flag", "argument"] = "argument",
    **overrides: Any,
) -> Settings:
    """Settings from the environment and env files, with `overrides` taking precedence.

    `env_files` replace the default ./.env; a later file wins over an earlier one and the
    environment wins over every file. `given_as="flag"` names overrides as command-line flags
    (`--batch-size`) in messages. A bad value ends the command with exit 2 and one line naming
    the setting and where it came from.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    files = _read_env_files(env_files)
    values, origins = _resolve(files, given, given_as)
    try:
        # Every value from the source that won: validated as given, nothing is read twice.
        settings = Settings.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        field = _field_of(tuple(error.get("loc", ())))
        if field is None:
            raise BadInput(f"bad settings: {message}") from None
        origin = origins[field]
        name = str(origin) if origin.kind != "default" else variable_for(field)
        raise BadInput(f"bad setting {name}: {message}") from None
    except SettingsError as exc:
        raise BadInput(f"bad setting: {exc}") from None
    settings._origins = origins
    settings._env_files = tuple(path for path, _ in files)
    return settings


@dataclass(frozen=True)
class SettingInEffect:
    """One row of `tokenfix config`."""

    name: str
    variable: str
    value: str | None
    """As you would write it in an env file; a password in a URL is ***."""
    origin: Origin


def _shown(value: Any) -> str | None:
    from tokenfix.config.redact import redact

    if value is None:
        return None
    if isinstance(value, SecretStr):
        return redact(value.get_secret_value())
    if isinstance(value, tuple) and not isinstance(value, QualifiedName):
        return ",".join(str(item) for item in value)
    return str(value)


def in_effect(settings: Settings) -> list[SettingInEffect]:
    """Every setting, its value (passwords redacted) and where it came from, in field order."""
    return [
        SettingInEffect(name, variable_for(name), _shown(getattr(settings, name)),
                        settings.origin(name))
        for name in Settings.model_fields
    ]  # fmt: skip
