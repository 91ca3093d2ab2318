"""Skeleton datasets, their transforms and the synthetic demo data."""
