"""Bad input to the foundation gets one clear line that says what to do, never a traceback."""

import pytest

from mailgate.errors import ConfigError
from mailgate_dev.cli.main import main
from mailgate_dev.local import deploy, resources


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_template_that_does_not_parse_names_the_file_and_the_place(tmp_path):
    bad = tmp_path / "template.yaml"
    bad.write_text("Resources:\n  Table: [unclosed\n")
    with pytest.raises(ConfigError, match=r"template.yaml does not parse: .*"):
        resources.load_template(bad)


def test_a_template_that_is_not_valid_sam_says_why():
    broken = {"Transform": "AWS::Serverless-2016-10-31",
              "Resources": {"F": {"Type": "AWS::Serverless::Function", "Properties": {"Events": "nonsense"}}}}
    with pytest.raises(ConfigError, match="not a valid SAM template"):
        deploy.to_cloudformation(broken, {})


def test_a_missing_argument_is_one_line_with_exit_2(capsys):
    code, _, err = run(capsys, "alias", "add", "sales@example.test")
    assert code == 2
    assert "--model" in one_line(err)


def test_a_wrong_aws_profile_is_one_line(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    code, _, err = run(capsys, "--stack", "mailgate", "--profile", "no-such-profile", "domain", "list")
    assert code == 1
    assert one_line(err) == ("mailgate: AWS profile 'no-such-profile' does not exist: "
                             "see `aws configure list-profiles`")
