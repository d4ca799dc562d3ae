"""Training, offline only (never in CI): corpora and datasets, the training loops of every
family, and their schedules. Serving never imports this package."""
