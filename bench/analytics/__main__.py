"""``python -m bench.analytics``: see run.py."""

from bench.analytics.run import main

main()
