"""Fixed column widths that fit 80 columns.

Auto-sized DataTable columns are measured after the first render, and cells rendered at the
header's width stay cached until they change — so every table here is given its widths."""

from __future__ import annotations

from textual.widgets import DataTable

__all__ = ["add_fixed_columns"]


def add_fixed_columns(table: DataTable, columns: list[tuple[str, int]]) -> None:
    for label, width in columns:
        table.add_column(label, width=width)
