import typer

from .apply import apply
from .canary import canary
from .diff import diff
from .get import get
from .history import history
from .rollback import rollback

NAME = "config"
app = typer.Typer(help="Documents the control plane keeps: filter-rules, push, tiering, routing, topology.",
                  no_args_is_help=True)
app.command("get")(get)
app.command("diff")(diff)
app.command("apply")(apply)
app.command("canary")(canary)
app.command("history")(history)
app.command("rollback")(rollback)
