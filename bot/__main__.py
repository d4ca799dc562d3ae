"""``python -m bot`` runs the cadenza launcher."""

from bot.cli import run

run()
