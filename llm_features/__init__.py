"""Precomputed features for MMCL: RGB strip features (FAM) and text features of LLM answers (FRM)."""
