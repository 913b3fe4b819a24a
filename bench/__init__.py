"""Benchmarks that compare batchjobs with its anchors side by side (DESIGN.md §7); see README.md."""
