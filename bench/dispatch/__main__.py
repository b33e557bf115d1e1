"""``python -m bench.dispatch``: see ``bench/dispatch/run.py``."""

from bench.dispatch.run import main

main()
