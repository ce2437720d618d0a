"""The table of what Telegram's errors mean (``source.failures``), against every error Telethon knows."""

from datetime import UTC, datetime, timedelta

import pytest
from telethon import errors, types
from telethon.errors.rpcerrorlist import rpc_errors_dict, rpc_errors_re

from include.album.source.failures import (
    CHANNEL_UNAVAILABLE_ERRORS,
    MEDIA_GONE_ERRORS,
    REFERENCE_EXPIRED_ERRORS,
    SESSION_UNUSABLE_ERRORS,
    Meaning,
    Wait,
    error_name,
    meaning,
    rules_matching,
)


def every_telethon_error() -> list[errors.RPCError]:
    """One instance of each class Telethon defines for an error string (the numbered ones with 42)."""
    found = []
    for cls in sorted(set(rpc_errors_dict.values()), key=lambda c: c.__name__):
        found.append(cls(request=None))
    for _, cls in rpc_errors_re:
        found.append(cls(request=None, capture=42))
    return found


def test_every_error_class_telethon_defines_falls_in_exactly_one_meaning():
    for exc in every_telethon_error():
        name = error_name(exc)
        rules = rules_matching(name, abs(exc.code))
        assert len(rules) <= 1, f"{type(exc).__name__} ({name}) is named by {rules}"
        assert meaning(exc) is (rules[0] if rules else Meaning.PASSING), name
    assert len(every_telethon_error()) > 500  # Telethon 1.45: 515 strings and 18 patterns


def test_every_error_the_table_names_is_one_telegram_has():
    known = {name.upper() for name in rpc_errors_dict}
    for named in (SESSION_UNUSABLE_ERRORS, CHANNEL_UNAVAILABLE_ERRORS, REFERENCE_EXPIRED_ERRORS, MEDIA_GONE_ERRORS):
        assert named <= known, sorted(named - known)


def test_error_names_are_telegrams_strings_with_their_numbers():
    assert error_name(errors.FloodPremiumWaitError(request=None, capture=90)) == "FLOOD_PREMIUM_WAIT_90"
    assert error_name(errors.FloodWaitError(request=None, capture=3)) == "FLOOD_WAIT_3"
    assert error_name(errors.PreviousChatImportActiveWaitMinError(request=None, capture=5)) == \
        "PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_5MIN"
    assert error_name(errors.ChannelPrivateError(request=None)) == "CHANNEL_PRIVATE"
    timeout = errors.rpc_message_to_error(types.RpcError(error_code=-503, error_message="TIMEOUT"), request=None)
    assert error_name(timeout) == "TIMEOUT"


@pytest.mark.parametrize(("error", "seconds"), [
    ("FLOOD_WAIT_600", 600), ("FLOOD_PREMIUM_WAIT_90", 90), ("SLOWMODE_WAIT_30", 30),
    ("FLOOD_TEST_PHONE_WAIT_20", 20), ("TAKEOUT_INIT_DELAY_3600", 3600),
    ("PREVIOUS_CHAT_IMPORT_ACTIVE_WAIT_2MIN", 120),
    ("FLOOD_NEW_KIND_WAIT_45", 45),  # an error Telethon does not know yet, a wait all the same
])
def test_every_wait_is_a_wait_with_its_seconds_counted_from_when_it_was_given(error, seconds):
    exc = errors.rpc_message_to_error(types.RpcError(error_code=420, error_message=error), request=None)
    given = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    wait = Wait.of(exc, given)
    assert meaning(exc) is Meaning.WAIT
    assert (wait.error, wait.seconds, wait.until, wait.given_at) == (
        error, seconds, given + timedelta(seconds=seconds), given)


@pytest.mark.parametrize(("error", "code", "expected"), [
    ("RPC_CALL_FAIL", 500, Meaning.PASSING), ("TIMEOUT", -503, Meaning.PASSING),
    ("SOMETHING_NEW", 400, Meaning.PASSING),  # unknown: may pass, fetched again (bounded)
    ("SOMETHING_NEW", 401, Meaning.SESSION_UNUSABLE),  # any unauthorised answer
    ("FILE_ID_INVALID", 400, Meaning.MEDIA_GONE), ("LOCATION_INVALID", 400, Meaning.MEDIA_GONE),
    ("FILE_REFERENCE_EXPIRED", 400, Meaning.REFERENCE_EXPIRED), ("CHANNEL_PRIVATE", 406, Meaning.CHANNEL_UNAVAILABLE),
    ("SESSION_REVOKED", 401, Meaning.SESSION_UNUSABLE), ("AUTH_KEY_DUPLICATED", 406, Meaning.SESSION_UNUSABLE),
])
def test_what_an_error_means_follows_its_string(error, code, expected):
    exc = errors.rpc_message_to_error(types.RpcError(error_code=code, error_message=error), request=None)
    assert meaning(exc) is expected
    assert Wait.of(exc) is None


def test_what_is_not_an_rpc_error_may_pass():
    assert meaning(ConnectionError("reset")) is Meaning.PASSING
