"""The settings Variable is read strictly: a mistake is one error naming the field, the value and the type."""

import pytest

from include.album.domain.settings import ConfigurationError, Settings


def test_values_of_the_right_type_are_taken_and_missing_ones_default():
    settings = Settings.from_json('{"max_messages_per_pull": 50, "s3_bucket": "albums", "vision_provider": "openai"}')
    assert (settings.max_messages_per_pull, settings.s3_bucket, settings.vision_provider) == (50, "albums", "openai")
    assert settings.media_size_cap_bytes == Settings().media_size_cap_bytes
    assert Settings.from_json(None) == Settings.from_json("") == Settings()


@pytest.mark.parametrize(("text", "message"), [
    ('{"max_messages_per_pull": "abc"}', 'setting max_messages_per_pull must be an integer, not "abc" (a string)'),
    ('{"max_messages_per_pull": "50"}', 'setting max_messages_per_pull must be an integer, not "50" (a string)'),
    ('{"max_messages_per_pull": 12.7}',
     "setting max_messages_per_pull must be an integer, not 12.7 (a number with a fraction)"),
    ('{"max_messages_per_pull": 12.0}',
     "setting max_messages_per_pull must be an integer, not 12.0 (a number with a fraction)"),
    ('{"max_messages_per_pull": true}', "setting max_messages_per_pull must be an integer, not true (true/false)"),
    ('{"max_messages_per_pull": null}', "setting max_messages_per_pull must be an integer, not null (null)"),
    ('{"s3_bucket": ["a", "b"]}', 'setting s3_bucket must be a string, not ["a", "b"] (a list)'),
    ('{"s3_bucket": 7}', "setting s3_bucket must be a string, not 7 (an integer)"),
    ('{"vision_provider": "gpt"}', 'setting vision_provider must be one of local, openai, not "gpt"'),
    ('{"albums_mapped_per_run": 0}', "setting albums_mapped_per_run must be between 1 and 1000, not 0"),
    ('{"max_messages_per_pull": -5}', "setting max_messages_per_pull must be at least 1, not -5"),
    ('{"max_mesages_per_pull": 5}', "unknown settings ['max_mesages_per_pull'] in Variable telegram_albums_settings"),
    ('{"max_messages_per_pull": 5', "Variable telegram_albums_settings is not valid JSON (Expecting ',' delimiter "
                                    "at line 1 column 28)"),
    ("max_messages_per_pull=5", "Variable telegram_albums_settings is not valid JSON"),
    ('[{"max_messages_per_pull": 5}]',
     "Variable telegram_albums_settings must be a JSON object of settings, not a list"),
])
def test_a_mistake_names_the_field_the_value_and_the_expected_type(text, message):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_json(text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_retired_setting_is_ignored_with_a_warning(caplog):
    settings = Settings.from_mapping({"album_batch_size": 100, "albums_mapped_per_run": 8})
    assert settings.albums_mapped_per_run == 8
    assert "album_batch_size" in caplog.text and "no longer used" in caplog.text


def test_a_configuration_error_is_a_value_error_for_callers_that_catch_those():
    assert issubclass(ConfigurationError, ValueError)
