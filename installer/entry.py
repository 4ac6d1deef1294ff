"""Entry point of the frozen app: the same ``workbench`` command line as the installed one
(GUI by default, ``--smoke`` / ``selftest`` for the self test)."""

import multiprocessing
import sys

if __name__ == "__main__":
    # Ray and torch DataLoader workers start processes; a frozen executable must not
    # re-run the app in each of them.
    multiprocessing.freeze_support()
    from workbench.cli import main

    sys.exit(main())
