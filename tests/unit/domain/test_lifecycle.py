"""An album's life (domain.lifecycle): every allowed transition, a refused one, each step's answers."""

from datetime import UTC, datetime

import pytest

from include.album.domain.lifecycle import (
    OUTCOMES,
    TRANSITIONS,
    Album,
    AlbumState,
    AlbumStep,
    IllegalTransition,
    StepOutcome,
    check_outcome,
    transition,
)

ALLOWED = [
    (AlbumState.OPEN, AlbumState.OPEN), (AlbumState.OPEN, AlbumState.ASSEMBLED), (AlbumState.OPEN, AlbumState.PARTIAL),
    (AlbumState.PARTIAL, AlbumState.ASSEMBLED), (AlbumState.PARTIAL, AlbumState.PARTIAL),
    (AlbumState.PARTIAL, AlbumState.OPEN), (AlbumState.ASSEMBLED, AlbumState.OPEN),
    (AlbumState.ASSEMBLED, AlbumState.ASSEMBLED),
]


@pytest.mark.parametrize(("current", "new"), ALLOWED)
def test_every_step_of_an_albums_life_is_allowed(current, new):
    assert transition(7, current, new) is new


def test_the_table_holds_exactly_those_steps():
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == set(ALLOWED)


def test_an_assembled_album_does_not_become_partial_without_being_recomposed():
    with pytest.raises(IllegalTransition, match="album 7: assembled -> partial is not a step of an album's life"):
        transition(7, AlbumState.ASSEMBLED, AlbumState.PARTIAL)


def test_each_step_answers_its_own_outcomes_or_passes_the_album_over():
    for step, answers in OUTCOMES.items():
        for outcome in StepOutcome:
            allowed = outcome in answers or outcome in (StepOutcome.UNCHANGED, StepOutcome.DELETED,
                                                        StepOutcome.QUARANTINED)
            if allowed:
                assert check_outcome(step, outcome) is outcome
            else:
                with pytest.raises(ValueError, match=f"step {step} answered {outcome}"):
                    check_outcome(step, outcome)
    assert StepOutcome.PUBLISHED not in OUTCOMES[AlbumStep.VISION]


def album(**columns) -> Album:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    base = dict(id=1, channel_id=2, username="c", grouped_id=3, album_kind="photo", items_count=2, caption_text=None,
                posted_at=now, content_hash="h2", state=AlbumState.OPEN, meta={}, composed_at=now, deleted_at=None,
                quarantined=False, enriched_hash=None, enriched_at=None, indexed_version=None)
    return Album(**{**base, **columns})


def test_where_an_album_stands_follows_its_columns():
    enriched = datetime(2026, 12, 5, 10, tzinfo=UTC)
    new = album()
    assert (new.is_enriched, new.is_assembled, new.ready_to_index, new.passed_over) == (False, False, False, None)
    published = album(state=AlbumState.ASSEMBLED, enriched_hash="h2", enriched_at=enriched)
    assert published.is_assembled and published.ready_to_index and not published.is_indexed
    indexed = album(state=AlbumState.ASSEMBLED, enriched_hash="h2", enriched_at=enriched, indexed_version=enriched)
    assert indexed.is_indexed and not indexed.ready_to_index
    recomposed = album(state=AlbumState.OPEN, enriched_hash="h1", enriched_at=enriched, indexed_version=enriched)
    assert not recomposed.is_enriched and not recomposed.ready_to_index  # its index holds an older composition
    partial = album(state=AlbumState.PARTIAL, enriched_hash="h2", enriched_at=enriched)
    assert not partial.is_assembled and partial.ready_to_index  # published partial: searchable meanwhile
    assert album(deleted_at=enriched).passed_over is StepOutcome.DELETED
    assert album(quarantined=True).passed_over is StepOutcome.QUARANTINED
