"""Readers of boundary and road files (geopandas/pyogrio + pyproj)."""
