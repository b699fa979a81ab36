"""GET /healthz (the process answers) and GET /readyz (the model is loaded and warmed up)."""

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
    """Answers 200 once the model is loaded and warmed up, 503 `not_ready` before that and during shutdown."""
    return ReadinessResponse(model_version=service.model.version)
