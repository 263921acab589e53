"""flarectl: the Flare command line. Each command group lives in flarectl/commands/<group>/."""

from __future__ import annotations

import typer

from flarectl.commands import register_all

app = typer.Typer(
    name="flarectl",
    help="Run, inspect and operate a Flare messaging platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
register_all(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
