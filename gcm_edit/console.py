"""Where progress and results are printed, and the library noise kept out of it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import track

T = TypeVar("T")
# Progress and stage lines go to stderr; result tables go to stdout (they can be piped).
console = Console(stderr=True, soft_wrap=True)  # a message stays one line, whatever its length


def progress(items: Iterable[T], description: str) -> Iterator[T]:
    """`items`, with a progress bar on stderr from the first item on (when it is a terminal:
    in a log file a bar would only leave blank lines), cleared when done."""
    disable = not console.is_terminal
    return track(items, description, console=console, transient=True, disable=disable)


def quiet_libraries() -> None:
    """Silence transformers' and Lightning's info logging and progress bars for a clean run."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lightning", "lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
