"""`python -m sylkbox` runs the command-line interface."""

from sylkbox.cli import main

raise SystemExit(main())
