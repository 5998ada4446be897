"""``python -m semg_hht``: the ``semg-hht`` command."""

from semg_hht.cli.main import main

raise SystemExit(main())
