"""How the ``touchpoints`` command ends: its exit code and output as the interpreter would give
them, without the interpreter's teardown, where a thread still inside DuckDB aborts the
process (see ``touchpoints.cli._leave``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# A thread in a DuckDB query that runs until it is interrupted, and an object of __main__
# that interrupts it when the interpreter's teardown frees it, then waits: the query's thread
# leaves DuckDB during the teardown and asks for the GIL back, which aborts the process (and
# cuts the wait short), however fast the machine. Without a teardown, nothing is interrupted
# and nothing aborts.
_BUSY_THREAD = """
import sys, threading, time
import duckdb

running = duckdb.connect().cursor()
asked = threading.Event()

def query() -> None:
    asked.set()
    try:
        running.execute("SELECT sum(i) FROM range(1000000000000) t(i)").fetchall()
    except duckdb.Error:  # interrupted
        pass

class SlowToFree:
    def __del__(self) -> None:
        running.interrupt()
        for _ in range(600):
            time.sleep(0.1)

slow = SlowToFree()
threading.Thread(target=query, daemon=True).start()
asked.wait()
time.sleep(0.2)
"""


def _run(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


def test_a_command_ends_with_its_code_while_a_thread_is_inside_duckdb(tmp_path: Path) -> None:
    """The interpreter's own exit aborts here (-6 and "FATAL: exception not rethrown": the
    control); the command's refusal ends with its code and message."""
    control = _run(_BUSY_THREAD + "sys.exit(1)\n", tmp_path)
    ended = _run(
        "import touchpoints.cli as cli\ncli._commands()\n"  # imported before the query
        + _BUSY_THREAD
        + "sys.argv = ['touchpoints', 'events', 'count', '--data-dir', 'nowhere']\n"
        + "cli.main()\n",
        tmp_path,
    )
    assert control.returncode == -6 and "exception not rethrown" in control.stderr
    assert ended.returncode == 1, ended.stderr
    said = " ".join(ended.stderr.split())
    assert "no touchpoints data in" in said and "touchpoints init" in said
    assert "rethrown" not in ended.stderr and "Traceback" not in ended.stderr


def test_what_is_left_to_do_at_exit_is_done(tmp_path: Path) -> None:
    """atexit functions run, output still buffered is written, an idle thread pool's
    non-daemon worker does not keep the process alive, and ``sys.exit("message")`` says its
    message with code 1, as the interpreter does."""
    script = """
    import atexit, sys
    from concurrent.futures import ThreadPoolExecutor
    from touchpoints.cli import _leave

    pool = ThreadPoolExecutor(2)
    pool.submit(print, "from the pool").result()  # its worker now waits for more work
    atexit.register(lambda: print("atexit ran"))
    sys.stdout.write("buffered, no newline")
    _leave("the reason")
    """
    result = _run(script, tmp_path)
    assert result.returncode == 1
    assert result.stdout == "from the pool\nbuffered, no newlineatexit ran\n"
    assert result.stderr == "the reason\n"
