"""The assistant's operator files (intents, FAQ, routing rules, dealers): YAML, read and
validated when touchpoints starts, with errors that name the file, the place and the reason
(``intents[3].examples.de: give at least 5 examples``), as the stage model is."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from touchpoints.yamlfiles import parsed

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
    return parsed(text, model, where, AssistantFileError)
