"""Open-file limits for large fleets: every simulated device holds a socket, and so does the broker for it."""

from __future__ import annotations

import resource


def raise_open_files(want: int) -> int:
    """Raise this process's RLIMIT_NOFILE (inherited by the processes it starts) to at least `want` if it is
    allowed to (raising the hard limit needs privilege), else as far as the hard limit goes; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(want, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
