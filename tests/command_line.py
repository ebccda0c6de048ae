"""What CLI tests share: running a command in-process, and reading the one-line message of one refused."""

from __future__ import annotations

from click.testing import CliRunner, Result

from search_rerank.cli import main


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def refused(result: Result) -> str:
    """The output of a command that ended in its one-line message (a traceback would leave another exception)."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (
        result.exception,
        result.output[-500:],
    )
    assert "Traceback" not in result.output
    return result.output
