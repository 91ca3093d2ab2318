"""Skeleton backbones and the MMCL training-only modules."""
