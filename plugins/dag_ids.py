"""The DAG and task ids that callers outside Airflow address, defined once: each DAG file takes its id
(and the ids of the tasks others read) from here, and so does every client of the REST API, so a
renamed DAG or task cannot leave a caller asking for one that no longer exists.

Plain strings and numbers: importing this module does not import Airflow.
"""

LAKE_OFFLOAD = "lake_offload"
MONITOR_MODEL = "monitor_model"
RETRAIN_MODEL = "retrain_model"
PROMOTE_MODEL = "promote_model"
ROLLBACK_MODEL = "rollback_model"
BATCH_SCORE = "batch_score"

# retrain_model: the task whose return value is the retrain request, and the sensor that waits on it for
# a new regime's labelled hours, poking every REGIME_POKE_S seconds
PLAN_RETRAIN = "plan_retrain"
WAIT_FOR_DATA = "wait_for_data"
REGIME_POKE_S = 30
# retrain_model's task that registers the candidate and sets `challenger` (promote_model follows on it)
REGISTER_CHALLENGER = "register_challenger"
