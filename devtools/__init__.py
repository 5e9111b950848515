"""Tooling for a checkout (bin/dev, the embedded servers of the tests and benchmarks):
not part of the installed package, nor of the image."""
