"""Loopback fakes of the outside services the product talks to, for tests."""
