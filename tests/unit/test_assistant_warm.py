"""The assistant_warm setting: a server's assistant job loads the language model on its first
turn (so the first customer does not wait), or, with the setting false, leaves it to the
first message, which still gets its answer. On a real data directory and the model the
wheel ships."""

from __future__ import annotations

from pathlib import Path

from touchpoints.assist.maintenance import assistant_job
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


def test_the_first_turn_loads_the_model_only_when_warm(tmp_path: Path) -> None:
    with Touchpoints.open(load_settings(tmp_path / "cold", assistant_warm=False)) as tp:
        assert tp.settings.assistant_warm is False
        job = assistant_job(tp.assistant, tp.agents, warm=tp.settings.assistant_warm)
        assert job.run_once()
        assert not tp.assistant.understanding.ready
        reading = tp.assistant.understanding.read("Wann habt ihr geöffnet?")
        assert tp.assistant.understanding.ready and reading.intent == "opening_hours"
    with Touchpoints.open(load_settings(tmp_path / "warm")) as tp:
        assert tp.settings.assistant_warm is True
        job = assistant_job(tp.assistant, tp.agents, warm=tp.settings.assistant_warm)
        assert job.run_once()
        assert tp.assistant.understanding.ready
