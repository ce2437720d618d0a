"""The updates listener's trigger: one trigger row whatever the number of parses, on the DAG's Asset."""

from include.album.orchestration.updates_trigger import TELEGRAM_UPDATES, TelegramUpdatesTrigger


def test_identical_kwargs_serialise_identically_so_airflow_keeps_one_trigger_row():
    first, second = TelegramUpdatesTrigger(), TelegramUpdatesTrigger()
    assert first.serialize() == second.serialize()
    classpath, kwargs = first.serialize()
    assert classpath == "include.album.orchestration.updates_trigger.TelegramUpdatesTrigger"
    assert kwargs == {"conn_id": "telegram_updates", "db_conn_id": "albums_db", "album_quiet": 5.0}
    assert TelegramUpdatesTrigger(**kwargs).serialize() == first.serialize()  # what the triggerer rebuilds


def test_the_asset_is_watched_by_the_listener():
    assert TELEGRAM_UPDATES.name == "telegram.updates"
    [watcher] = TELEGRAM_UPDATES.watchers
    assert isinstance(watcher.trigger, TelegramUpdatesTrigger)
