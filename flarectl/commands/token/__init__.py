import typer

from .issue import issue
from .revoke import revoke

NAME = "token"
app = typer.Typer(help="Client tokens for the WebSocket gateway.", no_args_is_help=True)
app.command("issue")(issue)
app.command("revoke")(revoke)
