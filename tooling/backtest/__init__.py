"""`continuum-backtest`: compare retraining policies on a recorded file, in one process."""
