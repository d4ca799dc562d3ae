"""The model zoo's yardsticks: band and lead metrics, model cards, the untrained twin the
evaluation scores beside the trained models."""
