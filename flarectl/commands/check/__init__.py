import typer

from .consistency import consistency

NAME = "check"
app = typer.Typer(help="Integrity checks over the stores (CI-friendly: exit 1 on any finding).", no_args_is_help=True)
app.command("consistency")(consistency)
