import typer

from .baseline import baseline
from .down import down
from .plan import plan
from .status import status
from .up import up
from .validate import validate

NAME = "migrate"
app = typer.Typer(help="Schema migrations of the message database (versioned SQL files, checksummed history).",
                  no_args_is_help=True)
app.command("status")(status)
app.command("plan")(plan)
app.command("up")(up)
app.command("down")(down)
app.command("validate")(validate)
app.command("baseline")(baseline)
