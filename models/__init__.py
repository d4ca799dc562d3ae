"""Music representation, tokenization and the PyTorch generators (only this package imports torch).

Importing ``models`` itself stays light: torch is imported by the model modules that need it.
"""
