"""A stop flag that a signal handler may set.

`threading.Event.set()` takes the lock of the event's Condition. A Python signal handler runs in
the main thread between two bytecodes, and the main thread of every long-running command spends
its idle time in `stop.wait(...)`, which holds that same lock for a moment on the way in and on
the way out. A SIGTERM landing in that moment made the handler wait for a lock its own thread
held: `musicnft deliver` hung forever on a stop (seen in CI: the supervisor waited out its drain
for it), and so could the producer, the consumer, the sales collector and the Spark job.

`StopEvent` keeps `threading.Event`'s interface (every loop takes one as a `threading.Event`), but
`set()` only stores a flag and writes a byte to a pipe, which takes no lock, and `wait()` sleeps
in `poll` on that pipe: a set from anywhere, a handler included, wakes every waiter at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading


class StopEvent(threading.Event):
    def __init__(self) -> None:
        super().__init__()
        self._stopped = False
        self._read_end, self._write_end = os.pipe()
        os.set_blocking(self._write_end, False)

    def is_set(self) -> bool:
        return self._stopped

    isSet = is_set

    def set(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        # The pipe stays readable from now on (nothing reads it): every wait returns at once.
        with contextlib.suppress(OSError):
            os.write(self._write_end, b"\0")

    def clear(self) -> None:
        self._stopped = False
        os.set_blocking(self._read_end, False)
        # each set() since the last clear wrote one byte: take it, and waits block again
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_end, 64)

    def wait(self, timeout: float | None = None) -> bool:
        if self._stopped:
            return True
        if timeout is not None and timeout <= 0:
            return False
        # A signal during poll: the handler runs, poll resumes (PEP 475) and, when the handler
        # set the flag, finds the pipe readable. A poller of its own per wait: one poll object
        # may not be polled by two threads at once.
        poller = select.poll()
        poller.register(self._read_end, select.POLLIN)
        poller.poll(None if timeout is None else timeout * 1000)
        return self._stopped

    def __del__(self) -> None:
        for fd in (self._read_end, self._write_end):
            with contextlib.suppress(Exception):  # (at interpreter exit `os` may be gone)
                os.close(fd)
