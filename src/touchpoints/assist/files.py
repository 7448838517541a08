"""The assistant's operator files (intents, FAQ, routing rules, dealers): YAML, read and
validated when touchpoints starts, with errors that name the file, the place and the reason
(``intents[3].examples.de: give at least 5 examples``), as the stage model is."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class AssistantFileError(ValueError):
    """An assistant file is not valid; the message names the file, the place and the reason."""


def default_text(name: str) -> str:
    """A file shipped with touchpoints (``intents.yaml``, ``faq.yaml``, …)."""
    return resources.files("touchpoints.assist").joinpath(name).read_text(encoding="utf-8")


def load_file(model: type[M], path: Path | None, default: str, what: str) -> M:
    """``path`` (or the shipped ``default``) read as YAML and validated as ``model``."""
    where = str(path) if path is not None else f"the built-in {what}"
    try:
        text = path.read_text(encoding="utf-8") if path is not None else default_text(default)
    except OSError as exc:
        raise AssistantFileError(f"cannot read the {what} {where}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise AssistantFileError(f"{where} is not UTF-8 text") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise AssistantFileError(f"{where} is not valid YAML{line}: {problem}") from None
    if not isinstance(data, dict):
        raise AssistantFileError(f"{where}: expected a mapping at the top")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{place(err['loc'])}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise AssistantFileError(f"{where}: {problems}") from None


def place(loc: tuple[Any, ...]) -> str:
    """A pydantic error's location as a path into the file: ``intents[3].examples.de``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part[:1].isupper() and part not in ("str", "float"):
            out += f".{part}" if out else part
    return out or "(top)"
