"""GET /healthz (the process answers) and GET /readyz (the model is loaded, warmed up, and making progress).

The two probes fail for different reasons on purpose. Readiness takes the replica out of the load
balancer's rotation while it cannot serve predictions: before the warm-up, during the shutdown, and
while images wait longer than `readiness_stall_seconds` with no model call finishing (a model call
that hangs); it comes back by itself when calls finish again. Liveness fails only when the process
no longer answers HTTP: a stalled or overloaded replica is not restarted, since a restart would drop
its queue and, under overload, move the load to the replicas that are left.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import ServiceDep
from app.api.schemas import HealthResponse, ReadinessResponse, error_responses
from digits import errors

router = APIRouter(tags=["probes"])


@router.get("/healthz", summary="Liveness probe", response_model=HealthResponse)
async def healthz() -> HealthResponse:
    """Answers 200 whenever the process serves HTTP, model or not: restart the process only if this fails."""
    return HealthResponse()


@router.get(
    "/readyz",
    summary="Readiness probe",
    response_model=ReadinessResponse,
    responses=error_responses(errors.ServiceNotReadyError),
)
async def readyz(service: ServiceDep) -> ReadinessResponse:
    """Answers 200 while the replica can serve predictions, else 503 `not_ready`.

    Not ready before the warm-up ends, during the shutdown, and while images have waited longer than
    `DIGITSERVE_READINESS_STALL_SECONDS` with no model call finishing (ready again once one does).
    """
    stalled_seconds = service.batcher.stalled_seconds()
    if stalled_seconds > service.settings.readiness_stall_seconds:
        raise errors.ServiceNotReadyError(
            f"no model call has finished for {stalled_seconds:.1f} s while images wait (limit "
            f"{service.settings.readiness_stall_seconds:g} s): the model has stalled; retry another replica"
        )
    model = service.model
    return ReadinessResponse(
        model_version=model.version, model_sha256=model.sha256, model_smoke_test=model.is_smoke_test
    )
