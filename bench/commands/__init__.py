"""The verbs of the `bench` command line, one module each, each exposing ``add_parser(subparsers)``."""
