"""Where progress and results are printed, and the library noise kept out of it."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    track,
)

T = TypeVar("T")
# Progress and stage lines go to stderr; result tables go to stdout (they can be piped).
console = Console(stderr=True, soft_wrap=True)  # a message stays one line, whatever its length


def progress(items: Iterable[T], description: str) -> Iterator[T]:
    """`items`, with a progress bar on stderr from the first item on (when it is a terminal:
    in a log file a bar would only leave blank lines), cleared when done."""
    disable = not console.is_terminal
    return track(items, description, console=console, transient=True, disable=disable)


@contextmanager
def generation_progress(total: int, description: str) -> Iterator[Callable[[int, int], None]]:
    """Yields `advance(answers, tokens)`. A bar over `total` answers with tokens per second
    and an ETA on a terminal; one summary line when done, on a terminal and in a log."""
    start, tokens = time.perf_counter(), 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} tokens/s"),
        TimeRemainingColumn(),
    )
    disable = not console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=disable) as bar:
        task = bar.add_task(description, total=total, rate="-")

        def advance(answers: int, new_tokens: int) -> None:
            nonlocal tokens
            tokens += new_tokens
            rate = tokens / max(time.perf_counter() - start, 1e-9)
            bar.update(task, advance=answers, rate=f"{rate:.0f}")

        yield advance
    seconds = time.perf_counter() - start
    console.print(
        f"  {description}: {total} answers, {tokens} tokens in {seconds:.1f}s "
        f"({tokens / max(seconds, 1e-9):.0f} tokens/s)",
        highlight=False,
    )


def quiet_libraries() -> None:
    """Silence transformers' and Lightning's info logging and progress bars for a clean run."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lightning", "lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
