"""The development tools' own command line."""

import pytest

from devtools.cli import main


@pytest.mark.integration
def test_sample_command_writes_and_registers_the_archive(pg, conn, tmp_path, capsys):
    assert main(["sample", str(tmp_path / "a"), "--register", "--dsn", pg.dsn]) == 0
    assert "3 channels" in capsys.readouterr().out
    assert (tmp_path / "a" / "expected.json").is_file()
    subs = conn.execute("SELECT tenant_id, channel_id FROM subscriptions ORDER BY 1, 2").fetchall()
    assert len(subs) == 4
