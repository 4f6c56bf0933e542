"""Compiled kernels (built from src_ext/)."""
