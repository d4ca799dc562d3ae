"""Export rows (ratings, arena votes) as CSV or JSON text for offline analysis."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence

EXPORT_FORMATS = ("csv", "json")
# Column order of the CSV export (the JSON export has the same keys, params as an object).
EXPORT_COLUMNS = (
    "clip_id", "user_id", "user_name", "stars", "rated_at", "updated_at", "self_vote", "style",
    "bars", "tempo", "key", "meter", "temperature", "seed", "model", "checkpoint_sha",
    "duration_s", "author_id", "clip_created_at", "params",
)


def format_rows(rows: list[dict], fmt: str, columns: Sequence[str],
                flatten: Callable[[dict], dict] | None = None) -> str:
    """Export rows as a JSON array, or as CSV with ``columns`` (``flatten`` turns a row's
    nested values into cells)."""
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {k: row[k] for k in columns}
        writer.writerow(flatten(flat) if flatten else flat)
    return buffer.getvalue()


def format_ratings(rows: list[dict], fmt: str) -> str:
    """Rows from ``Store.export_ratings`` as CSV (params as a JSON column) or a JSON array."""

    def flatten(flat: dict) -> dict:
        flat["params"] = json.dumps(flat["params"], sort_keys=True, separators=(",", ":"))
        flat["self_vote"] = int(flat["self_vote"])
        return flat

    return format_rows(rows, fmt, EXPORT_COLUMNS, flatten)
