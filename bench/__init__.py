"""Stage and end-to-end benchmarks, each with a naive baseline in the same run."""
