"""Tooling around the product, not part of the library: the demo driver (`tooling/loop`) plays the whole
loop on a running stack through its public interfaces (Kafka, Airflow's REST API, MLflow, the lake)."""
