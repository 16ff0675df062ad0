"""`python -m mlgate <command>`: see mlgate/cli/commands.py."""

from mlgate.cli.commands import main

raise SystemExit(main())
