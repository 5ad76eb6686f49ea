"""Files written through a temporary file and a rename get the permissions a plain ``open()``
would have given them (``tempfile.mkstemp`` makes them 0600, private to the owner)."""

from __future__ import annotations

import os
import stat
import threading

_UMASK_LOCK = threading.Lock()


def usual_mode(final: str | os.PathLike[str]) -> int:
    """The mode ``final`` keeps if it exists, else 0o666 less the process's umask."""
    try:
        return stat.S_IMODE(os.stat(final).st_mode)
    except OSError:
        with _UMASK_LOCK:  # reading the umask means setting it: keep others out meanwhile
            mask = os.umask(0o022)
            os.umask(mask)
        return 0o666 & ~mask


def set_usual_mode(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Give ``tmp`` (about to be renamed to ``final``) the mode ``final`` would have."""
    os.chmod(tmp, usual_mode(final))
