"""`python -m mlgate <command>`: see mlgate/cli.py."""

from mlgate.cli import main

raise SystemExit(main())
