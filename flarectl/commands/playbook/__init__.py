import typer

from .history import history
from .list_playbooks import list_playbooks
from .run import run
from .show import show
from .validate import validate

NAME = "playbook"
app = typer.Typer(help="Runbooks of flarectl steps that check themselves (playbooks/*.yaml).", no_args_is_help=True)
app.command("list")(list_playbooks)
app.command("show")(show)
app.command("validate")(validate)
app.command("run")(run)
app.command("history")(history)
