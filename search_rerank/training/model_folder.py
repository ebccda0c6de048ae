"""Where a trained model is written: a folder of its own, put in the place of ``models_dir/NAME`` only once the
model and its card are whole.

Written in place, a retrained model mixed with the one it replaces: a run stopped between the weights and the
card left new weights under the old card (the service, reloaded then, served weights its card does not
describe), and files the new run does not write (a distilled student's ONNX graph under a name now given to a
full cross-encoder) stayed beside the new weights. A worker that loads the model meanwhile reads the old folder
whole or the new one whole.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A new, empty folder named as ``out`` (beside it, in a hidden one that the model registry skips) to write
    the model and its card into; on leaving, it replaces ``out`` with two renames, or is removed when the
    training failed, leaving ``out`` as it was."""
    hidden = out.parent / f".{out.name}.staging-{os.getpid()}"
    shutil.rmtree(hidden, ignore_errors=True)  # a run of the same process id, killed before
    folder = hidden / out.name
    folder.mkdir(parents=True)
    try:
        yield folder
        replaced = hidden / "replaced"
        if out.exists():
            out.rename(replaced)
        try:
            folder.rename(out)
        except OSError:
            if replaced.exists():
                replaced.rename(out)
            raise
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
