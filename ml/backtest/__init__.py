"""Backtest retraining policies on a recorded file, in memory: the monitor's and the retrain DAG's own
functions (validation, drift, live metrics, the decision, the regime wait, training, the gates) driven
hour by hour in event-time order, without Kafka, Airflow or an MLflow server.

    stream = load_stream(path, contract, ReplayOptions(rows_per_hour=100, start=...), lateness)
    runs = run_policies(stream, [never(), every(24, s), configured(s)], BacktestOptions(history_hours=24))
    summarize(runs, change_at)      # per policy: retrains, false alarms, accuracy, AUC, regret
    disagreements(recorded_decisions(lake, window_ends(run)), run)   # against a paced run's decisions
"""
