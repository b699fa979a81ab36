"""`python -m digitserve`: the `digitserve` command (`digitserve.cli`)."""

from digitserve.cli import main

raise SystemExit(main())
