from click.testing import CliRunner

from sync.cli import main


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for name in ("route", "policy", "sync", "audit", "sandbox", "demo"):
        assert f"  {name} " in result.output


def test_unknown_command_is_an_error(leadgate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = leadgate("no-such-command", cwd=str(tmp_path))
    assert proc.returncode == 2
    assert "No such command" in proc.stderr
