"""`mailgate server ...` input that the deployed stack could not store is refused up front."""

import pytest

from mailgate_dev.cli.main import main


@pytest.mark.parametrize("name", ["office inbox", "büro", "a" * 65, "x/../y", "o#1"])
def test_a_server_name_secrets_manager_cannot_hold_is_one_clear_line(capsys, name):
    # Secrets Manager names allow letters, digits and /_+=.@- only: the password could not be stored
    code = main(["server", "add-imap", name, "--host", "imap.example.test", "--user", "me", "--no-password"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is not a usable server name" in err and "office-inbox" in err
