"""The wrapped judge key: opens only with the password and for the account it was wrapped for."""

from __future__ import annotations

import pytest

from hearing_server.auth.judge_keys import WrongPassword, rewrap_key, unwrap_key, wrap_key

KEY = b"0\x82\x04\xbd not a real key, just bytes to wrap" * 10


def test_the_key_opens_with_its_password_only() -> None:
    blob = wrap_key(KEY, "judge password 1", "account-a")
    assert KEY not in blob and unwrap_key(blob, "judge password 1", "account-a") == KEY
    with pytest.raises(WrongPassword):
        unwrap_key(blob, "judge password 2", "account-a")


def test_a_blob_copied_to_another_account_does_not_open() -> None:
    blob = wrap_key(KEY, "judge password 1", "account-a")
    with pytest.raises(WrongPassword):
        unwrap_key(blob, "judge password 1", "account-b")


def test_rewrapping_moves_the_key_to_the_new_password() -> None:
    blob = rewrap_key(wrap_key(KEY, "old password", "a"), "old password", "new password", "a")
    assert unwrap_key(blob, "new password", "a") == KEY
    with pytest.raises(WrongPassword):
        unwrap_key(blob, "old password", "a")
    with pytest.raises(WrongPassword):
        rewrap_key(blob, "old password", "x", "a")
