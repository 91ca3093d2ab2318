"""Data preparation and analysis tools."""
