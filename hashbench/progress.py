"""Progress reporting that the library emits and the command-line interface renders.

Library code never draws progress bars itself. A long step calls ``progress.task(...)`` and
advances the returned handle; the CLI passes a rich-backed implementation, and everything else gets
the silent ``NULL_PROGRESS``.
"""

from contextlib import contextmanager


class Progress:
    """Silent progress reporter; subclasses render it.

    Use as::

        with progress.task("Extracting features", total=n_images) as advance:
            for batch in batches:
                ...
                advance(len(batch))
    """

    @contextmanager
    def task(self, description, total=None):
        """Open a progress task and yield a function that advances it by a count."""
        yield lambda count=1: None


NULL_PROGRESS = Progress()
