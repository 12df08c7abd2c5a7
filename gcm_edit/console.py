"""Where progress and results are printed, and the library noise kept out of it."""

from __future__ import annotations

import logging
import os

from rich.console import Console

# Progress and stage lines go to stderr; result tables go to stdout (they can be piped).
console = Console(stderr=True, soft_wrap=True)  # a message stays one line, whatever its length


def quiet_libraries() -> None:
    """Silence transformers' and Lightning's info logging and progress bars for a clean run."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lightning", "lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
