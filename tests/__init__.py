"""The test suite; a package so that test modules import ``tests._helpers`` and test
files in different folders may share a name."""
