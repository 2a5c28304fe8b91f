"""``python -m monzo_auth ARGS`` runs the ``monzo-auth`` command with ARGS."""

import os
import sys

from . import binary


def main() -> None:
    command = binary()
    if sys.platform == "win32":
        import subprocess

        raise SystemExit(subprocess.call([command, *sys.argv[1:]]))
    os.execv(command, [command, *sys.argv[1:]])


if __name__ == "__main__":
    main()
