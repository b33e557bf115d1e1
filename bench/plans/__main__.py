"""``python -m bench.plans``."""

from bench.plans.run import main

main()
