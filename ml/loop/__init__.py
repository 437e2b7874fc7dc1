"""The whole loop on a running stack, time-compressed (`continuum-loop run`): see `ml/loop/run.py`."""
