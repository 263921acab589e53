import typer

from .list_contexts import list_contexts
from .set_context import set_context
from .use_context import use_context

NAME = "context"
app = typer.Typer(help="Named control-plane endpoints and tokens (like kubeconfig contexts).", no_args_is_help=True)
app.command("set")(set_context)
app.command("use")(use_context)
app.command("list")(list_contexts)
