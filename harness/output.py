"""Terminal output of the command line: user text printed verbatim, tables whole in a pipe.

Text from files and flags (a regex such as `'^[a-z]*$'`, a token spec `name:secret:role`) is
printed as a `rich.text.Text`, so Rich reads neither markup nor emoji codes in it. When stdout
is not a terminal (CI logs, `| less`) the console is wide, so a table is never cut at 80
columns; on a terminal it fits the window.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

PIPE_WIDTH = 4000

console = Console(emoji=False, highlight=False)
err = Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)


def fit_to_output() -> None:
    """Make both consoles wide when they do not write to a terminal (a terminal keeps its
    own width)."""
    for c in (console, err):
        if not c.is_terminal:
            c.width = PIPE_WIDTH


def say(text: str, style: str | None = None, *, to: Console | None = None) -> None:
    """Print `text` exactly as given (no markup, no emoji codes, no highlighting)."""
    (to or console).print(Text(text, style=style or ""), soft_wrap=True)


def error(message: str) -> None:
    """`error: message` on stderr, the message verbatim."""
    err.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)


def cell(text: object, style: str | None = None) -> Text:
    """A table cell holding `text` verbatim."""
    return Text(str(text), style=style or "")
