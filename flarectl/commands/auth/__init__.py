import typer

from .revoke import revoke
from .token import issue

NAME = "auth"
app = typer.Typer(help="Control-plane access: tokens with roles (viewer, operator, admin; service for instances).", no_args_is_help=True)
token_app = typer.Typer(help="Control-plane tokens.", no_args_is_help=True)
token_app.command("issue")(issue)
token_app.command("revoke")(revoke)
app.add_typer(token_app, name="token")
