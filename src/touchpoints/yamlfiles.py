"""The operator's YAML files (the stage model, next best action rules, the assistant's
intents, FAQ, routing rules and dealers): read, parsed and validated in one way, with
errors that name the file, the place and the reason (``stages[2].enter: …``,
``intents[3].examples.de: give at least 5 examples``, ``x.yaml is not valid YAML at line
4, column 3: …``). Each part raises its own error class with that message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

# Tags pydantic puts in an error's location for the branch of a union that failed; they
# are not places in the file.
_TYPE_TAGS = frozenset({"str", "int", "float", "bool"})


def place(loc: tuple[Any, ...]) -> str:
    """A pydantic error's location as a path into the file: ``intents[3].examples.de``
    (union branches, named after their class or a type, left out); ``(top)`` for the
    document itself."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part[:1].isupper() and part not in _TYPE_TAGS:
            out += f".{part}" if out else part
    return out or "(top)"


def parsed(
    text: str,
    model: type[M],
    where: str,
    error: Callable[[str], Exception],
    top: str = "a mapping",
) -> M:
    """``text`` (YAML read from ``where``) validated as ``model``, or ``error`` raised with
    the place and the reason of every problem; ``top`` says what the document should be
    (``"a mapping with 'stages'"``)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where} is not valid YAML{line}: {problem}") from None
    if not isinstance(data, dict):
        raise error(f"{where}: expected {top} at the top")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{place(err['loc'])}: {str(err['msg']).removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise error(f"{where}: {problems}") from None
