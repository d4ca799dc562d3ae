"""Music representation, tokenization and the PyTorch generators (only this package imports torch).

Importing ``cadenza.models`` itself stays light: torch is imported by the model modules that
need it.
"""
