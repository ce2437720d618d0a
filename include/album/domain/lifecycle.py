"""An album's life, in one place: its states, the steps that move it, and what each step answers
(and, beside it, the one other state a thing of the pipeline has: a channel's, ``ChannelState``).

An album (``media_groups``) is composed from its posts by ingestion, then each run's album task
group takes it through four steps, each a task that reads what it needs and leaves its work in
Postgres::

    OPEN ──vision, summary, enrich──► ASSEMBLED          every item has a result or a terminal skip
      │                                                  (its S3 summaries and enrichment published)
      └──after assembly_timeout_minutes──► PARTIAL ──► ASSEMBLED   once the missing items arrive
    ASSEMBLED / PARTIAL ──recomposed (a late item, an edit)──► OPEN

Besides its state an album records which composition its published enrichment is of
(``enriched_hash``, ``enriched_at``) and which enrichment the search index holds
(``indexed_version`` = the ``enriched_at`` indexed): it is done when both are current. Deleted
(tombstoned) and quarantined albums are passed over by every step.

``Album`` is an album as the steps read it (``album_get``); ``StepOutcome`` is what a step did
with it; ``AlbumStep`` names the steps (``REPUBLISH`` is the refresh DAG's whole pass at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ChannelState(StrEnum):
    """``channels.state``: whether Telegram lets the account read the channel."""

    ACTIVE = "active"
    UNAVAILABLE = "unavailable"  # refused (private, banned): passed over until re-checked or re-enabled


class AlbumState(StrEnum):
    """``media_groups.status``."""

    OPEN = "open"  # composed, not published for this composition
    ASSEMBLED = "assembled"  # published, every item analysed or skipped for good
    PARTIAL = "partial"  # published after the timeout with items missing; completed later


class ItemStatus(StrEnum):
    """An album item in its album's summary (``items[].status``)."""

    ANALYZED = "analyzed"  # vision has a result for its image
    SKIPPED = "skipped"  # a terminal skip: no image, or one vision cannot read
    PENDING = "pending"  # its media (or result) is still to come


class AlbumStep(StrEnum):
    """The steps of an album's mapped task group, in order (the task ids are ``album.<step>``),
    and the refresh DAG's republish, which does them all at once."""

    VISION = "vision"
    SUMMARY = "summary"
    ENRICH = "enrich"
    INDEX = "index"
    REPUBLISH = "republish"


class StepOutcome(StrEnum):
    """What a step did with an album."""

    UNCHANGED = "unchanged"  # already done for this composition: nothing to do
    DONE = "done"  # vision: every image of the album analysed (or cached, or skipped for good)
    PENDING = "pending"  # vision: an item's media is still to come (fetched again by a later pull)
    WAITING = "waiting"  # summary, enrich: not complete yet, nothing published
    ASSEMBLED = "assembled"  # summary: complete
    PARTIAL = "partial"  # summary: the timeout passed with items missing
    PUBLISHED = "published"  # enrich: S3 summaries and the enrichment written (an ``album.assembled`` event)
    INDEXED = "indexed"  # index: Qdrant and the graph hold the current enrichment
    DELETED = "deleted"  # tombstoned: passed over
    QUARANTINED = "quarantined"  # failed every try of a step for this composition: passed over until requeued


# What each step may answer (``check_outcome``): a step answering anything else is a bug.
OUTCOMES: dict[AlbumStep, frozenset[StepOutcome]] = {
    AlbumStep.VISION: frozenset({StepOutcome.DONE, StepOutcome.PENDING}),
    AlbumStep.SUMMARY: frozenset({StepOutcome.ASSEMBLED, StepOutcome.PARTIAL, StepOutcome.WAITING}),
    AlbumStep.ENRICH: frozenset({StepOutcome.PUBLISHED, StepOutcome.WAITING}),
    AlbumStep.INDEX: frozenset({StepOutcome.INDEXED}),
    AlbumStep.REPUBLISH: frozenset({StepOutcome.PUBLISHED, StepOutcome.INDEXED, StepOutcome.WAITING}),
}
PASSED_OVER = frozenset({StepOutcome.UNCHANGED, StepOutcome.DELETED, StepOutcome.QUARANTINED})

# The states an album may go to from each (publishing again the same state is allowed).
TRANSITIONS: dict[AlbumState, frozenset[AlbumState]] = {
    AlbumState.OPEN: frozenset({AlbumState.OPEN, AlbumState.ASSEMBLED, AlbumState.PARTIAL}),
    AlbumState.PARTIAL: frozenset({AlbumState.OPEN, AlbumState.PARTIAL, AlbumState.ASSEMBLED}),
    AlbumState.ASSEMBLED: frozenset({AlbumState.OPEN, AlbumState.ASSEMBLED}),
}


class IllegalTransition(ValueError):
    """An album asked to go where its life does not lead (a bug, never data)."""


def transition(album_id: int, current: AlbumState, new: AlbumState) -> AlbumState:
    """``new`` when an album in ``current`` may go there, else ``IllegalTransition``."""
    if new not in TRANSITIONS[current]:
        raise IllegalTransition(f"album {album_id}: {current} -> {new} is not a step of an album's life "
                                f"(from {current}: {', '.join(sorted(TRANSITIONS[current]))})")
    return new


def check_outcome(step: AlbumStep, outcome: StepOutcome) -> StepOutcome:
    """``outcome`` when ``step`` may answer it (or passed the album over), else ``ValueError``."""
    if outcome not in OUTCOMES[step] | PASSED_OVER:
        raise ValueError(f"step {step} answered {outcome}, which it never should")
    return outcome


@dataclass(frozen=True)
class Album:
    """An album as the steps read it (``album_get``), with where it stands in its life."""

    id: int
    channel_id: int
    username: str | None
    grouped_id: int
    album_kind: str
    items_count: int
    caption_text: str | None
    posted_at: datetime
    content_hash: str
    state: AlbumState
    meta: dict
    composed_at: datetime
    deleted_at: datetime | None
    quarantined: bool
    enriched_hash: str | None
    enriched_at: datetime | None
    indexed_version: datetime | None

    @property
    def label(self) -> str:
        return f"@{self.username or self.channel_id} album {self.id}"

    @property
    def is_live(self) -> bool:
        """Neither deleted nor quarantined: the steps work on it."""
        return self.deleted_at is None and not self.quarantined

    @property
    def passed_over(self) -> StepOutcome | None:
        """``DELETED`` or ``QUARANTINED`` when the steps pass it over, else None."""
        if self.deleted_at is not None:
            return StepOutcome.DELETED
        return StepOutcome.QUARANTINED if self.quarantined else None

    @property
    def is_enriched(self) -> bool:
        """Its published enrichment is of its current composition."""
        return self.enriched_hash == self.content_hash

    @property
    def is_assembled(self) -> bool:
        """Assembled, and for this very composition: vision, summary and enrich have nothing to do."""
        return self.state is AlbumState.ASSEMBLED and self.is_enriched

    @property
    def is_indexed(self) -> bool:
        """The search index holds its current enrichment."""
        return self.is_enriched and self.indexed_version == self.enriched_at

    @property
    def ready_to_index(self) -> bool:
        """Enriched for its current composition, and the index does not hold that yet."""
        return self.is_enriched and not self.is_indexed
