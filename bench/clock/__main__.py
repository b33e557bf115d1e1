"""``python -m bench.clock``."""

from bench.clock.run import main

main()
