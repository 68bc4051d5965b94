"""One module per `dlfound` command, each with `main(argv)`; `dlfound.cli` is the table that picks one."""
