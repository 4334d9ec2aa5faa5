"""Sub-commands of the ``textsieve`` command line; see :mod:`textsieve.cli`."""
