"""The command line and its tools (info, verify, convert, bench, tune, demo), and the measuring
code ``split-dataset bench`` shares with ``benchmarks/``: users of the library, which never
imports them."""
