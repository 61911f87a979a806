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


def test_a_config_key_written_twice_stops_every_command_that_reads_it(leadgate, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # `audit verify` and `sync run` read leadgate.yaml the same way: neither picks the later
    # database_url and goes on against a ledger nobody meant
    (tmp_path / "leadgate.yaml").write_text(
        "database_url: sqlite:///ledger.db\ndatabase_url: sqlite:///other.db\n")
    for args in (("audit", "verify"), ("sync", "run"), ("sync", "status")):
        proc = leadgate(*args, cwd=str(tmp_path))
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr == ("error: leadgate.yaml:2: database_url: duplicate key "
                               "'database_url' (fix: correct the YAML at that line)\n"), args
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leadgate.yaml"]
