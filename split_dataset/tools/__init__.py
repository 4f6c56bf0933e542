"""The command line and its tools (info, verify, convert, bench, tune, demo): users of the
library, which never imports them."""
