"""The HTTP baseline: the endpoint the seed's plan would produce, to compare ``serve`` against.

``python -m benchmarks.http_baseline`` with MODEL_URI (a file path or file:// URI), SERVE_HOST
and SERVE_PORT. A FastAPI app on uvicorn, written the obvious way: ``POST /v1/score`` takes one
event (validated with the contract's pydantic model, ``contract.validation.parse_event``),
builds a one-row DataFrame (``contract.frame.events_to_frame``) and calls the loaded pipeline's
``predict_proba`` on it, per request. No compiled fast path, no batching, no gates. ``GET
/readyz`` answers 200 once the pipeline is loaded (before the server listens).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import uvicorn
from fastapi import FastAPI, HTTPException, Request

from contract.errors import ContractViolation
from contract.frame import events_to_frame
from contract.storage import parse_location
from contract.validation import parse_event


def model_path(model_uri: str) -> Path:
    location = parse_location(model_uri)
    if not isinstance(location, Path):
        raise SystemExit(f"the baseline reads local builds only, not {model_uri}")
    return location


def build_app(pipeline: Any) -> FastAPI:
    app = FastAPI(title="baseline")

    @app.post("/v1/score")
    async def score(request: Request) -> dict[str, Any]:
        try:
            event = parse_event(await request.body())
        except ContractViolation as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        probability = float(pipeline.predict_proba(events_to_frame([event]))[0, 1])
        return {"session_id": event.session_id, "probability": probability}

    @app.get("/readyz")
    async def readyz() -> dict[str, bool]:
        return {"ready": True}

    return app


def main() -> int:
    pipeline = joblib.load(model_path(os.environ["MODEL_URI"]))
    app = build_app(pipeline)
    uvicorn.run(
        app,
        host=os.environ.get("SERVE_HOST", "127.0.0.1"),
        port=int(os.environ.get("SERVE_PORT", "8080")),
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
