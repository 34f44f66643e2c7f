"""Which mapping is in effect (docs/mapping.md): --mapping PATH, else TOKENFIX_MAPPING, else
./tokenfix.toml if present (named on stderr), else the settings (the default mapping).

Apart from `tokenfix.mapping.file` so that a run with no mapping file does not build that
module's pydantic models: start-up counts in a cron run (docs/performance.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from tokenfix.base.errors import BadInput
from tokenfix.config.settings import Settings
from tokenfix.mapping.types import Mapping, default_mapping

LOCAL_FILE = "tokenfix.toml"
# settings a mapping file replaces: setting one beside a mapping is a contradiction.
MAPPED_SETTINGS = (
    "usage_table",
    "profiles_table",
    "overrides_table",
    "remaining_column",
    "used_column",
    "grant_action",
    "deduct_action",
)


def explicit_settings(settings: Settings) -> list[str]:
    """The table/column/action settings given explicitly (environment, .env, flags)."""
    return [name for name in MAPPED_SETTINGS if name in settings.model_fields_set]


def resolve(settings: Settings, flag: Path | None, *, note: Any = None) -> Mapping:
    """The mapping in effect: --mapping, TOKENFIX_MAPPING, ./tokenfix.toml, else the
    docs/configuration.md
    settings. `note` is called with a one-line note when ./tokenfix.toml is picked up."""
    path, source = None, ""
    if flag is not None:
        path, source = flag, "--mapping"
    elif settings.mapping is not None:
        path, source = settings.mapping, "TOKENFIX_MAPPING"
    elif Path(LOCAL_FILE).is_file():
        path, source = Path(LOCAL_FILE), f"./{LOCAL_FILE}"
        if note is not None:
            note(f"using the mapping in ./{LOCAL_FILE} (found in the working directory)")
    if path is None:
        return default_mapping(settings)
    clashing = explicit_settings(settings)
    if clashing:
        names = ", ".join(f"TOKENFIX_{name.upper()}" for name in clashing)
        raise BadInput(
            f"a mapping ({source} {path}) and {names} both say where the balances are; "
            "give one of them",
            hint="move the setting into the mapping file, or drop the mapping",
        )
    from tokenfix.mapping.file import load_file

    loaded = load_file(path)
    default = default_mapping(settings)
    if loaded.signature() == default.signature():
        # The default mapping written out (`tokenfix mapping > tokenfix.toml`): the same
        # mapping, so the same statements (values bound as parameters) and the same checks.
        return replace(default, origin=loaded.origin)
    return loaded
