"""The ``qlearn`` command line."""
