"""Every subcommand explains itself: a description, an example, help for each option."""

from __future__ import annotations

import argparse

import pytest

from pipelines.cli import COMMANDS, build_parser, main

pytestmark = pytest.mark.unit


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help__lists_every_subcommand_with_an_example(capsys) -> None:
    assert main([]) == 2  # no subcommand: the help, and a usage exit code
    out = capsys.readouterr().out
    for name in _subparsers():
        assert name in out
    assert "Example" in out


@pytest.mark.parametrize("name", sorted(_subparsers()))
def test_subcommand_help__has_an_example_and_explains_every_option(name: str) -> None:
    parser = _subparsers()[name]
    text = parser.format_help()
    assert "Example" in text, f"leadcast {name} --help shows no example"
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"leadcast {name} {action.option_strings[0]} has no help text"


def test_commands__are_all_registered() -> None:
    assert len(_subparsers()) >= len(COMMANDS)
