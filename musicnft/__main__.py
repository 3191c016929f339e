"""`python -m musicnft`: the same CLI as the `musicnft` command."""

from musicnft.app.cli import main

raise SystemExit(main())
