-- Runs once, when the Postgres data volume is empty (docker-entrypoint-initdb.d): one database for
-- the Airflow metadata and one for the MLflow tracking and registry store, owned by POSTGRES_USER.
-- Production would give each its own role with rights on its database only.
CREATE DATABASE airflow;
CREATE DATABASE mlflow;
