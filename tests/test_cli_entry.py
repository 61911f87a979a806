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


def test_an_officer_action_without_a_token_or_terminal_is_one_line(leadgate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # cron or a pipe: nobody to ask, and a token typed where it would be echoed is not offered
    for args in (("approve", "1", "--team", "uk_retail", "--rep", "alice"), ("reject", "1"),
                 ("resolve", "1", "--note", "called back")):
        proc = leadgate("review", *args, "--officer", "cco-marta", cwd=str(tmp_path), input="",
                        env={"LEADGATE_OFFICER_TOKEN": ""})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr == ("error: --token: no officer token given, and no terminal to ask "
                               "for it on (fix: pass --token or set LEADGATE_OFFICER_TOKEN)\n")
