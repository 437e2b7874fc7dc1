"""The whole loop on a running stack, time-compressed (`continuum-loop run`): see `tooling/loop/run.py`."""
