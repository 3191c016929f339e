"""moto keeps its AWS state per process, shared by every moto server started in it.

A local run that starts its own `ThreadedMotoServer` (the chaos run's cloud part, the cloud
rehearsal) may share its process with earlier ones (a test worker runs many tests): a stream or
bucket of the same name left behind would be "in use", or worse, hold another run's objects. So
such a run starts from a clean state.
"""

from __future__ import annotations

import urllib.request


def reset_moto(url: str) -> None:
    """Forget every resource of the moto server at `url` (and of every server in its process)."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
