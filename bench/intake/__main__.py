"""``python -m bench.intake``."""

from bench.intake.run import main

main()
