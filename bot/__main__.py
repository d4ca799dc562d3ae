"""``python -m bot`` runs the cadenza launcher."""

import sys

from bot.cli import main

sys.exit(main())
