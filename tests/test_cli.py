"""What every `textsieve` command shares: flags, exit codes, a closed stdout, internal errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from textsieve import __version__
from textsieve.cli import build_parser, main, subcommands


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: a for a in parser._actions for flag in a.option_strings}


def test_every_flag_has_help_and_the_shared_flags_agree() -> None:
    commands = subcommands(build_parser())
    assert {p.prog for p in commands} >= {
        "textsieve dedup",
        "textsieve ngram train",
        "textsieve lm train",
        "textsieve workshop",
        "textsieve bench",
    }
    for parser in commands:
        flags = _flags(parser)
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):  # its choices have help
                assert action.help, f"{parser.prog}: {action.option_strings or action.dest}"
        assert "--version" in flags, parser.prog
        # the short and long forms go together wherever a command has them
        for short, long in (("-q", "--quiet"), ("-o", "--output")):
            if short in flags or long in flags:
                assert flags.get(short) is flags.get(long), f"{parser.prog}: {short} {long}"


@pytest.mark.parametrize("argv", [["dedup"], ["ngram", "train"], ["lm", "generate"]])
def test_version_on_subcommands(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([*argv, "--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"textsieve {__version__}"


def test_lm_train_takes_dash_o() -> None:
    args = build_parser().parse_args(["lm", "train", "--text", "t.txt", "-o", "m.npz"])
    assert args.out == "m.npz"


def test_a_bug_is_an_internal_error_not_bad_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import textsieve.commands.bench as bench

    def broken(args: argparse.Namespace) -> int:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    monkeypatch.setattr(bench, "run", broken)
    code = main(["bench"])
    err = capsys.readouterr().err
    assert code == 70
    assert "Traceback" in err and "TypeError" in err
    assert "textsieve bench: internal error" in err and "report" in err
    assert "textsieve bench: error:" not in err


@pytest.mark.parametrize(
    "exc", [ValueError("bad value"), FileNotFoundError(2, "No such file", "x.jsonl")]
)
def test_bad_input_is_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: Exception
) -> None:
    import textsieve.commands.bench as bench

    def failing(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(bench, "run", failing)
    assert main(["bench"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("textsieve bench: error:") and "Traceback" not in err


def test_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """`textsieve ngram score ... | head -1`: no "Broken pipe", no traceback, SIGPIPE's status."""
    import textsieve as ts

    docs = tmp_path / "docs.txt"
    docs.write_text("abc\nabd\n" * 20_000, encoding="utf-8")  # ~1.3 MB of JSONL out
    model = tmp_path / "m.npz"
    ts.AddKLM(order=2).fit(["abc", "abd"]).save(model)
    proc = subprocess.Popen(
        [sys.executable, "-m", "textsieve", "ngram", "score", str(model), str(docs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b'{"id"')
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
