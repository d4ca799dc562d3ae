"""Hostile MIDI inputs built in code, shared by the tests and bench/upload_parse.py."""

from __future__ import annotations

import random

UPLOAD_LIMIT = 1 << 20


def megabyte_upload() -> bytes:
    """~1 MiB of running-status notes (174,759 of them), cut at the upload limit mid-track."""
    rng = random.Random(7)
    body = bytearray(b"\x00\x90\x3c\x50")
    while len(body) < UPLOAD_LIMIT:
        p = rng.randint(40, 90)
        body += bytes([0x18, p, 0x50, 0x18, p, 0x00])
    data = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0" + b"MTrk\x00\x10\x00\x00" + body
    return data[:UPLOAD_LIMIT]
