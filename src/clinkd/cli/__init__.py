"""The ``clinkd`` command line: a thin layer mapping subcommands to library functions."""
