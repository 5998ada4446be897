"""The command-line layer: argument parsers, the ``semg-hht`` console command, and the mapping of
the library's errors and log records to messages, flags and exit codes. The top-level scripts
call these; nothing in the package imports them."""
