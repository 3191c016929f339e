"""The signal dispositions the tests' children start with (see conftest's
`_take_ctrl_c_as_a_terminal_would`)."""

from __future__ import annotations

import subprocess
import sys


def test_a_child_process_takes_ctrl_c_as_from_a_terminal() -> None:
    # GIVEN this worker, however the suite was started (a background job ignores SIGINT)
    # WHEN it starts a Python child
    out = subprocess.run(
        [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # THEN Ctrl-C raises KeyboardInterrupt there, as `dagster dev` and every CLI expects
    assert "default_int_handler" in out, out
