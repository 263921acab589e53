import typer

from .list_chunks import list_chunks
from .plan import plan
from .restore import restore
from .run import run
from .verify import verify

NAME = "archive"
app = typer.Typer(help="The L1 -> L2 archive: Parquet chunks + JSON manifests in the object store.",
                  no_args_is_help=True)
app.command("plan")(plan)
app.command("run")(run)
app.command("verify")(verify)
app.command("restore")(restore)
app.command("list")(list_chunks)
