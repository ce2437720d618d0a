"""Mapped work units: how many task instances a run has, whatever it brings.

A run maps its ingestion over units of channels and its album group over units of albums.
Up to ``max_units`` items, each is a unit of its own: one task instance per channel or album,
visible and retryable on its own in the UI. Beyond it the items are split into ``max_units``
near-equal units that do the same work in a loop, so the number of task instances, and
Airflow's cost per task instance, stays bounded by settings however much a run brings (and
under Airflow's ``max_map_length``, 1024).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

LABEL_LENGTH = 120  # characters of a unit's label shown in the UI (Airflow keeps 250)


def work_units(ids: Iterable[int], max_units: int) -> list[list[int]]:
    """Split ``ids`` into at most ``max_units`` units of near-equal size, in id order."""
    ordered = sorted(set(ids))
    count = min(len(ordered), max_units)
    size, extra = divmod(len(ordered), count) if count else (0, 0)
    units, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        units.append(ordered[start:end])
        start = end
    return units


def unit_label(names: Sequence[str], noun: str) -> str:
    """What a unit holds, for the UI: its one item's name, else ``"3 channels @a, @b, @c"``,
    listing as many names as fit in ``LABEL_LENGTH`` and counting the rest (``"+12"``)."""
    if len(names) == 1:
        return names[0]
    label = f"{len(names)} {noun}"
    for shown, name in enumerate(names):
        rest = f" +{len(names) - shown}"
        candidate = f"{label}{',' if shown else ''} {name}"
        if len(candidate) + len(rest) > LABEL_LENGTH and shown < len(names) - 1:
            return label + rest
        label = candidate
    return label
