"""GET /v1/model, /healthz, /readyz and /metrics."""

from __future__ import annotations

from sklearn.pipeline import Pipeline

from contract.samples import EXAMPLE_EVENT
from contract.schema import CONTRACT_VERSION
from scoring.metrics import RUNTIME_METRIC_NAMES
from serve.metrics import SERVE_METRIC_NAMES
from tests.unit.serve.conftest import INFO, TEST_METRICS, ServeFactory, served_model


def test_readiness_follows_the_gates_and_the_stop(
    serve_app: ServeFactory, pipeline: Pipeline
) -> None:
    served = serve_app(ready=False)
    response = served.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["loading"] is True
    assert served.client.get("/healthz").status_code == 200, "loading is alive"
    assert served.metric("scorer_ready") == 0
    served.state.set_ready(served_model(pipeline))
    assert served.client.get("/readyz").json() == {
        "ready": True,
        "gates_passed": True,
        "loading": False,
        "stopping": False,
    }
    assert served.metric("scorer_ready") == 1
    served.state.set_stopping()
    assert served.client.get("/readyz").status_code == 503
    assert served.metric("scorer_ready") == 0


def test_a_refused_build_is_never_ready(serve_app: ServeFactory) -> None:
    served = serve_app(ready=False)
    served.state.set_refused("model gate 'sha256' failed: ...")
    response = served.client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["loading"] is False
    assert "sha256" in response.json()["refused"]


def test_the_model_endpoint_describes_the_build(serve_app: ServeFactory) -> None:
    body = serve_app().client.get("/v1/model").json()
    assert body["model_build_id"] == INFO.build_id
    assert body["model_variant"] == INFO.variant
    assert body["threshold"] == INFO.threshold
    assert body["contract_version"] == CONTRACT_VERSION
    assert body["test_metrics"]["roc_auc"] == TEST_METRICS.roc_auc
    assert body["test_metrics"]["brier"] == TEST_METRICS.brier
    assert body["scoring_path"] == "pipeline"


def test_metrics_count_requests_by_path_and_status_and_time_them(
    serve_app: ServeFactory,
) -> None:
    served = serve_app()
    served.client.post("/v1/score", json=EXAMPLE_EVENT)
    served.client.post("/v1/score", json={"session_id": "x"})
    served.client.get("/no/such/path/12345")
    text = served.client.get("/metrics").text
    assert served.metric("serve_requests_total", path="/v1/score", status="200") == 1
    assert served.metric("serve_requests_total", path="/v1/score", status="422") == 1
    assert served.metric("serve_requests_total", path="other", status="404") == 1
    assert "/no/such/path" not in text, "unknown paths share one label value"
    assert served.metric("serve_request_duration_seconds_count", path="/v1/score") == 2
    assert served.metric("scorer_batch_duration_seconds_count", stage="score") == 2
    for name in (*SERVE_METRIC_NAMES, *RUNTIME_METRIC_NAMES):
        assert f"# TYPE {name} " in text, name
