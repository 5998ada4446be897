"""``python -m semg_hht``: the ``semg-hht`` command."""

from .cli_main import main

raise SystemExit(main())
