"""``python -m bench.stats``."""

from bench.stats.run import main

main()
