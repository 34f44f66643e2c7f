"""`--help` as prose (docs/commands.md): no type labels of the Python signature.

Typer labels every parameter with its annotation (`<bool>` beside a flag, `<list[str]>` beside
an argument whose name already says `[USER_ID]...`, `<str>`, `<int range>`), and the column
they take squeezes the help text until long words such as TOKENFIX_STARTING_BALANCE are cut.
Here a flag has no label, an argument keeps its name only, and a value shows its metavar
(`PATH`, `N`, `URL`) or its choices.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption


def _option_label(self: TyperOption, ctx: Any) -> str | None:
    if self.metavar is not None:
        return self.metavar
    if self.is_flag or self.count:
        return None
    # What Typer knows of the annotation (its attribute names vary between versions).
    described: Any = getattr(self, "type_descriptor", None)
    choices = getattr(described, "choices", None)
    if choices:
        return "|".join(str(getattr(choice, "value", choice)) for choice in choices)
    if getattr(described, "is_path", False):
        return "PATH"
    if getattr(described, "annotation", None) in (int, float):
        return "N"
    return "TEXT"


def _argument_label(self: TyperArgument, ctx: Any) -> str | None:
    return None  # its name (the metavar) is the label


def install() -> None:
    """Once, when the application is built."""
    TyperOption.display_type_rich = _option_label  # type: ignore[method-assign]
    TyperArgument.display_type_rich = _argument_label  # type: ignore[method-assign,assignment]
