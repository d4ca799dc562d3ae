"""``python -m cadenza`` runs the cadenza launcher."""

from cadenza.cli import run

run()
