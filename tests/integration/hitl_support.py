"""A person answering promote_model's approval request while `dag.test()` waits for it, through the
function behind Airflow's own REST endpoint (PATCH .../hitlDetails), its check that the user is one the
request is assigned to included; the user is who Airflow's login would have authenticated."""

from __future__ import annotations

import time

# Imported here, in the test's thread, before a thread that answers starts: Airflow's models imported
# from two threads at once (the answering one, and dag.test()'s DagBag) deadlock on SQLAlchemy's mapper lock.
import airflow.dag_processing.dagbag  # noqa: F401
from airflow.api_fastapi.app import create_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
from airflow.models.hitl import HITLDetail
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState
from fastapi import HTTPException
from sqlalchemy import select

from plugins.dag_ids import PROMOTE_MODEL

ROLES = {"admin": "admin", "approver": "user", "pipeline": "op"}  # as the stack's simple auth manager has them


def open_request(model_name: str, timeout_s: float = 180.0) -> tuple[str, str, str]:
    """(dag id, run id, task id) of the approval request for `model_name` once a task waits on it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with create_session() as session:
            found = session.execute(
                select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id)
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                .where(TaskInstance.dag_id == PROMOTE_MODEL, TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                       HITLDetail.subject.contains(model_name), HITLDetail.responded_at.is_(None))).first()
        if found is not None:
            return tuple(found)
        time.sleep(0.5)
    raise TimeoutError(f"no approval request for {model_name} within {timeout_s:g} s")


def answer(request: tuple[str, str, str], user: str, option: str, reason: str = "") -> int:
    """Answer as the Airflow user `user`; returns the HTTP status Airflow's endpoint gives (200, 403...)."""
    create_auth_manager()
    dag_id, run_id, task_id = request
    try:
        with create_session() as session:
            update_hitl_detail(dag_id=dag_id, dag_run_id=run_id, task_id=task_id, map_index=-1, session=session,
                               update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[option],
                                                                                  params_input={"reason": reason}),
                               user=SimpleAuthManagerUser(username=user, role=ROLES[user]))
    except HTTPException as exc:
        return exc.status_code
    return 200
