from datetime import UTC, datetime, timedelta

from include.album.domain.grouping import GroupMember, album_kind, caption_of, compose_album, group_members

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def member(message_id: int, text: str = "", kind: str | None = "photo", sha: str | None = None) -> GroupMember:
    return GroupMember(message_id=message_id, text=text, posted_at=T0 + timedelta(seconds=message_id),
                       media_kind=kind, sha256=sha or f"{message_id:064x}")


def test_items_are_ordered_by_message_id_with_zero_based_positions():
    album = compose_album(1, 99, [member(12), member(10), member(11)])
    assert [(i.position, i.message_id) for i in album.items] == [(0, 10), (1, 11), (2, 12)]
    assert album.posted_at == T0 + timedelta(seconds=10)


def test_album_split_across_two_pulls_is_extended_with_a_new_composition():
    first_pull = compose_album(1, 99, [member(10, "caption"), member(11)])
    both_pulls = compose_album(1, 99, [member(10, "caption"), member(11), member(12)])
    assert first_pull.items_count == 2 and both_pulls.items_count == 3
    assert first_pull.content_hash != both_pulls.content_hash
    assert [i.message_id for i in both_pulls.items] == [10, 11, 12]


def test_same_posts_give_the_same_content_hash_whatever_the_arrival_order():
    a = compose_album(1, 99, [member(10), member(11), member(12)])
    b = compose_album(1, 99, [member(12), member(10), member(11), member(11)])
    assert a.content_hash == b.content_hash


def test_caption_on_item_three_is_the_album_caption():
    album = compose_album(1, 99, [member(10), member(11, "  "), member(12, "Street food tour"), member(13, "later")])
    assert album.caption_text == "Street food tour"


def test_caption_is_none_when_no_item_has_text():
    assert compose_album(1, 99, [member(10), member(11)]).caption_text is None
    assert caption_of(["", " \n"]) is None


def test_photo_and_video_make_a_mixed_album():
    assert compose_album(1, 99, [member(10, kind="photo"), member(11, kind="video")]).album_kind == "mixed"
    assert album_kind(["photo", "photo"]) == "photo"
    assert album_kind(["video", "gif"]) == "video"
    assert album_kind(["document", "audio"]) == "document"


def test_the_same_grouped_id_in_two_channels_makes_two_albums():
    one = compose_album(1, 99, [member(10), member(11)])
    two = compose_album(2, 99, [member(10), member(11)])
    assert (one.channel_id, one.grouped_id) != (two.channel_id, two.grouped_id)


def test_an_eleventh_item_is_kept_and_flagged():
    album = compose_album(1, 99, [member(100 + n) for n in range(11)])
    assert album.items_count == 11
    assert album.over_limit is True
    assert compose_album(1, 99, [member(100 + n) for n in range(10)]).over_limit is False


def test_edited_caption_changes_the_content_hash():
    before = compose_album(1, 99, [member(10, "old"), member(11)])
    after = compose_album(1, 99, [member(10, "new"), member(11)])
    assert before.content_hash != after.content_hash


def test_an_edited_text_of_a_non_caption_item_changes_the_content_hash():
    before = compose_album(1, 99, [member(10, "caption"), member(11, "first comment")])
    after = compose_album(1, 99, [member(10, "caption"), member(11, "edited comment")])
    assert before.caption_text == after.caption_text
    assert before.content_hash != after.content_hash


def test_group_members_splits_rows_per_grouped_id():
    groups = group_members([(5, member(1)), (6, member(2)), (5, member(3))])
    assert {k: [m.message_id for m in v] for k, v in groups.items()} == {5: [1, 3], 6: [2]}
