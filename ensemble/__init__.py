"""Fusing the score files of separately trained streams: reading, presets, weighted sum, weight search."""
