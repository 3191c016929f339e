"""`dagster dev` on an instance whose storage exists before its processes start.

`dagster dev` starts its webserver, daemon and code server at once, and on a new SQLite instance
each of them finds no tables and creates them, stamping the schema's revision: two stamps make
`history/runs.db` unreadable for good ("Version table 'alembic_version' has more than one head
present", dagster-io/dagster#27390). Seen in `musicnft run --dagster`'s end-to-end test once
Python's bytecode caches made the three processes start close enough together. So `musicnft run
--dagster` starts this module instead: it opens the instance at DAGSTER_HOME once (creating its
storage, alone), then becomes `dagster dev` with the same arguments (exec: same process, so
signals and process groups are exactly `dagster dev`'s).

    DAGSTER_HOME=$PWD/data/dagster python -m musicnft_dagster.dev -w workspace.yaml -p 3000
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn


def prepare_instance(home: Path) -> None:
    """Create the storage of the instance at `home` (a no-op when it exists), in this process."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)  # touches the run storage: created above, read here


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        print("musicnft_dagster.dev: set DAGSTER_HOME to the instance's directory", file=sys.stderr)
        raise SystemExit(2)
    prepare_instance(Path(home))
    dagster = str(Path(sys.executable).parent / "dagster")
    os.execv(dagster, [dagster, "dev", *args])


if __name__ == "__main__":
    main()
