"""The deterministic demo county: five towns of Quzhou (衢州), with grids, people, cases.

``load_sample(session, seed=…)`` fills a migrated database through a session without
committing. Everything follows from the seed (numpy generators keyed by seed, stage and town, so
one stage never shifts another's numbers); ``end`` only moves the year of history in time.

Scale 1 (the demo): the towns 高家镇 and 大洲镇 (衢江区), 球川镇 (常山县), 贺村镇 (江山市) and
华埠镇 (开化县) at their approximate real locations, each an irregular 60–150 km² outline split
into 10–25 villages and each village into 1–4 grids of ~300–500 households, read from the
committed ``data/boundaries/*.geojson`` when ``seed`` is the one they record (the settings'
default; regenerate them with ``gis sample boundaries``), generated otherwise. One grid
member per grid; per town a service centre, police station, market-supervision office and
law-enforcement squad, per county a traffic-police brigade and an emergency/flood team; roads;
50–150 cameras per town; ~8,000 cases per town over the year, with their event logs.

Scale K > 1 (benchmarks): 5·K towns — the five real ones and 5·K − 5 synthetic towns
(示范镇001…) on a hexagonal lattice around them, in made-up counties 330830–330879 — with
denser grids (4–18 per village instead of 1–4) and 2,500 cases per town unless
``incidents_per_town`` says otherwise: K=100 gives ~95k grids and ~1.25M cases. Above scale 1
the boundaries are generated, not read from the files.
"""

from gis.sample.boundaries import Boundaries, generate_boundaries, write_boundaries
from gis.sample.load import SampleSummary, load_sample

__all__ = [
    "Boundaries",
    "SampleSummary",
    "generate_boundaries",
    "load_sample",
    "write_boundaries",
]
