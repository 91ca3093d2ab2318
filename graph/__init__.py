"""Skeleton graphs: joint layouts and their normalised adjacency matrices."""
