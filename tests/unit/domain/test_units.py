"""Mapped work units: task instances per run are bounded by settings, and labelled with what they hold."""

from include.album.domain.units import LABEL_LENGTH, unit_label, work_units


def test_work_units_stay_under_max_map_length_for_any_number_of_items():
    assert work_units([3, 1, 2, 2], 3) == [[1], [2], [3]]
    assert work_units([], 32) == []
    assert work_units(range(1, 8), 3) == [[1, 2, 3], [4, 5], [6, 7]]
    units = work_units(range(3000), 32)
    assert len(units) == 32
    assert sorted(i for unit in units for i in unit) == list(range(3000))
    assert {len(unit) for unit in units} == {93, 94}


def test_a_unit_label_names_its_one_item_or_as_many_as_fit_and_counts_the_rest():
    assert unit_label(["@album_lab"], "channels") == "@album_lab"
    assert unit_label(["@a", "@b", "@c"], "channels") == "3 channels @a, @b, @c"
    many = [f"@steady_{i:04d}" for i in range(125)]
    label = unit_label(many, "channels")
    assert label.startswith("125 channels @steady_0000, @steady_0001") and len(label) <= LABEL_LENGTH
    shown = label.count("@steady_")
    assert label.endswith(f" +{125 - shown}")
