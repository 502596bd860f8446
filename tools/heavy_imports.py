"""Loading heavy optional libraries in a worker, one at a time, without what they skip.

spaCy (through thinc) and Presidio import PyTorch and Transformers whenever those are
installed, although Keel's blank spaCy pipeline and Presidio's pattern recognizers use
neither; both libraries treat a failed import as "not installed". PyTorch is installed
for the ``keel[embeddings]`` extra, and should cost memory only once a collection embeds
with the local model. `heavy_imports(without=...)` makes the named modules fail to import
while a library loads (Python refuses to import a name that `sys.modules` maps to None),
then lets them be imported again.

`sys.modules` is shared by the worker's threads, so every heavy load goes through one
lock: an embedder loading PyTorch in another thread never finds it blocked.
"""

import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["heavy_imports"]

_LOADING = threading.RLock()


@contextmanager
def heavy_imports(without: Sequence[str] = ()) -> Iterator[None]:
    """Import heavy libraries in the block, one thread at a time.

    Args:
        without: Top-level modules that fail to import meanwhile, unless already imported.
    """
    with _LOADING:
        blocked = [name for name in without if name not in sys.modules]
        for name in blocked:
            # None in sys.modules makes an import fail; typeshed only allows modules there.
            sys.modules[name] = None  # pyright: ignore[reportArgumentType]
        try:
            yield
        finally:
            for name in blocked:
                if name in sys.modules and sys.modules[name] is None:
                    del sys.modules[name]
