"""Sub-commands of the ``nascore`` command line, one module each (``register(subparsers)``)."""
