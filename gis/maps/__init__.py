"""Folium map builders: data in, HTML out (no database session)."""
