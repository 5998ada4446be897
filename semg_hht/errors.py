"""Exit codes shared by the command-line scripts, and the error that maps to usage failures."""

EXIT_OK = 0
"""Everything asked for was done."""
EXIT_PARTIAL = 1
"""The run finished, but some input files were skipped (each one is reported)."""
EXIT_USAGE = 2
"""Nothing could be done: bad flags, missing paths or checkpoints, no usable data."""
EXIT_OUT_OF_MEMORY = 3
"""The device ran out of memory; retry with a smaller --batch_size or --cpu."""


class UsageError(Exception):
    """A problem the user must fix before anything can run (exit code 2)."""


def out_of_memory_advice(batch_size: int) -> str:
    """The message for a CUDA out-of-memory error at ``batch_size``."""
    smaller = max(1, batch_size // 2)
    return f"CUDA out of memory at --batch_size {batch_size}: try --batch_size {smaller} (or smaller), or --cpu"
