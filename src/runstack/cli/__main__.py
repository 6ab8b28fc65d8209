"""``python -m runstack.cli``: the same as the ``runstack`` command."""

from runstack.cli import main

main(prog_name="runstack")
