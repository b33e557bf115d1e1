"""``python -m bench.maps``: see run.py."""

from bench.maps.run import main

main()
