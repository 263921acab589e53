import typer

from .run import run

NAME = "controlplane"
app = typer.Typer(help="The control-plane daemon.", no_args_is_help=True)
app.command("run")(run)
