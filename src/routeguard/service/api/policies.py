"""The policy lifecycle: upload → approve (four eyes) → publish (all / tenants / percent)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from routeguard.service import lifecycle
from routeguard.service.api.deps import APPROVER, AUTHOR, ERRORS, VIEWER, get_state
from routeguard.service.auth import Principal
from routeguard.service.schemas import (
    ApproveIn,
    ErrorBody,
    PolicyUpload,
    PublishIn,
    PublishOut,
    UploadOut,
    VersionList,
    VersionOut,
)

router = APIRouter(tags=["policies"])

_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    422: {"model": ErrorBody, "description": "invalid_bundle (with findings) or invalid_request"},
}
_VERSION_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "unknown_version"},
    409: {"model": ErrorBody, "description": "not_approved / state_conflict"},
}


def upload(body: PolicyUpload, request: Request, principal: Principal = AUTHOR) -> JSONResponse:
    """Store a bundle as a new draft version (201), or only check it (`dry_run`, 200)."""
    label = body.label if body.label is not None else (str(body.version) if body.version is not None else None)
    extras = lifecycle.UploadExtras(scope=body.scope, approver=body.approver)
    status, out = lifecycle.upload(get_state(request), body.config, label, body.dry_run, principal.name, extras)
    return JSONResponse(out, status)


def list_versions(request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    """What the store holds, read in step with what this replica serves (see `service.fleet`)."""
    state = get_state(request)

    def read() -> dict[str, Any]:
        rollout = state.store.policies.rollout()
        versions = [lifecycle.version_view(v, rollout) for v in state.store.policies.list_versions()]
        return {
            "versions": versions,
            "stable_version": rollout.stable_version(),
            "publications": [p.to_dict() for p in rollout.publications],
        }

    return state.fleet.consistent(read)


for _path, _internal in (("/v1/policies", False), ("/internal/model-routing/policies", True)):
    _suffix = " (internal API twin)" if _internal else ""
    router.add_api_route(
        _path,
        upload,
        methods=["POST"],
        status_code=201,
        response_model=UploadOut,
        responses={
            200: {"model": UploadOut, "description": "dry run: checked, nothing stored"},
            **_UPLOAD_ERRORS,
        },
        summary="Upload a bundle" + _suffix,
        operation_id="upload_policy" + ("_internal" if _internal else ""),
    )
    router.add_api_route(
        _path,
        list_versions,
        methods=["GET"],
        response_model=VersionList,
        responses=ERRORS,
        summary="Policy versions" + _suffix,
        operation_id="list_policies" + ("_internal" if _internal else ""),
    )


@router.get(
    "/v1/policies/{version}",
    response_model=VersionOut,
    responses=_VERSION_ERRORS,
    summary="One policy version, with its bundle",
)
def show(version: int, request: Request, _p: Any = VIEWER) -> dict[str, Any]:
    state = get_state(request)

    def read() -> dict[str, Any]:
        pv = state.store.policies.get_version(version)
        return lifecycle.version_view(pv, state.store.policies.rollout(), with_content=True)

    return state.fleet.consistent(read)


@router.post(
    "/v1/policies/{version}/approve",
    response_model=VersionOut,
    responses=_VERSION_ERRORS,
    summary="Approve a version (the approver must not be its author)",
)
def approve(
    version: int, request: Request, body: ApproveIn | None = None, principal: Principal = APPROVER
) -> dict[str, Any]:
    return lifecycle.approve(get_state(request), version, principal.name, body.comment if body else None)


@router.post(
    "/v1/policies/{version}/publish",
    response_model=PublishOut,
    responses=_VERSION_ERRORS,
    summary="Publish an approved version to all, named tenants or a percentage of tenants",
)
def publish(
    version: int, request: Request, body: PublishIn | None = None, principal: Principal = APPROVER
) -> dict[str, Any]:
    scope = body.scope.model_dump(exclude_none=True) if body is not None and body.scope is not None else None
    return lifecycle.publish(get_state(request), version, scope, principal.name)
