"""Benchmarks behind ``mrtlab bench``: figures are measured side by side in one run."""
