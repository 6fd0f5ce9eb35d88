"""Tests of mfa_sklearn.groups, one module per group family."""
