"""The REST API against real stores (SQLite and PostgreSQL) through the ASGI client."""

from __future__ import annotations

import json
from typing import Any

import dashboard_history as h
import pytest
from fastapi.testclient import TestClient

from runstack.repository import Repository
from store_support import StatementCounter


def test_pipelines_have_run_counts_and_latest_runs(client: TestClient) -> None:
    [p] = client.get("/api/pipelines").json()
    assert p["name"] == "train_pipeline"
    assert p["run_count"] == 4
    assert p["latest_run"]["name"] == "r-4"
    assert p["latest_run"]["status"] == "completed"
    assert [r["name"] for r in p["recent"]] == ["r-1", "r-2", "r-3", "r-4"]  # newest last
    assert [r["status"] for r in p["recent"]] == ["completed", "completed", "failed", "completed"]


def test_runs_are_listed_with_step_counts_parameters_and_metrics(client: TestClient) -> None:
    page = client.get("/api/pipelines/train_pipeline/runs").json()
    assert page["total"] == 4
    runs = {r["name"]: r for r in page["runs"]}
    assert [r["name"] for r in page["runs"]] == ["r-4", "r-3", "r-2", "r-1"]  # newest first
    assert runs["r-1"]["steps"] == {
        "total": 2,
        "completed": 2,
        "cached": 0,
        "failed": 0,
        "running": 0,
    }
    assert runs["r-3"]["steps"]["failed"] == 1
    assert runs["r-3"]["status"] == "failed"
    assert runs["r-4"]["steps"]["cached"] == 2
    assert runs["r-1"]["parameters"] == {"load": {"rows": 5}, "train": {"lr": 0.1, "fail": False}}
    # Scalar outputs, read from the artifacts: 0+1+2+3+4 = 10 times lr; the long string is no metric.
    assert runs["r-1"]["metrics"] == {
        "load": {"rows": 5},
        "train": {"accuracy": 1.0, "label": "fine"},
    }
    assert runs["r-4"]["metrics"]["train"]["accuracy"] == pytest.approx(2.0)  # cached: reused
    assert "train" not in runs["r-3"]["metrics"]
    assert page["parameter_columns"] == ["load.rows", "train.lr", "train.fail"]
    assert page["metric_columns"] == ["load.rows", "train.accuracy", "train.label"]
    assert runs["r-1"]["duration"] > 0


def test_runs_are_filtered_and_paged_in_the_store(client: TestClient) -> None:
    url = "/api/pipelines/train_pipeline/runs"
    failed = client.get(url, params={"status": "failed"}).json()
    assert (failed["total"], [r["name"] for r in failed["runs"]]) == (1, ["r-3"])
    page = client.get(url, params={"limit": 2, "offset": 1, "newest_first": "false"}).json()
    assert page["total"] == 4
    assert [r["name"] for r in page["runs"]] == ["r-2", "r-3"]
    prefixed = client.get(url, params={"name_prefix": "r-1"}).json()
    assert [r["name"] for r in prefixed["runs"]] == ["r-1"]
    empty = client.get(url, params={"name_prefix": "zzz"}).json()
    assert (empty["total"], empty["runs"]) == (0, [])


def test_a_run_has_its_steps_with_outputs_and_parents(client: TestClient) -> None:
    run = client.get("/api/runs/r-2").json()
    assert (run["name"], run["pipeline"], run["status"]) == ("r-2", "train_pipeline", "completed")
    load, train = run["steps"]
    assert (load["name"], load["entrypoint"], load["parents"]) == ("load", "load", [])
    assert train["parents"] == ["load"]
    assert train["parameters"] == {"lr": 0.2, "fail": False}
    assert list(load["outputs"]) == ["table", "array", "rows"]
    table = load["outputs"]["table"]
    assert table["data_type"] == "pandas.DataFrame"
    assert table["materializer"].endswith("PandasMaterializer")
    assert list(train["inputs"]) == ["table", "array"]
    assert train["inputs"]["table"]["artifact_id"] == table["artifact_id"]
    assert train["outputs"]["model"]["pickle_based"] is True
    assert train["metrics"] == {"accuracy": pytest.approx(2.0), "label": "fine"}
    assert len(train["attempts"]) == 1 and train["duration"] > 0
    cached = client.get("/api/runs/r-4").json()["steps"]
    assert [s["cached"] for s in cached] == [True, True]
    assert all(o["reused"] for s in cached for o in s["outputs"].values())


def test_a_step_says_why_it_was_cached_or_failed(client: TestClient) -> None:
    hit = client.get("/api/runs/r-4/steps/train").json()
    assert hit["cache"]["cached"] is True
    assert hit["cache"]["source_run"] == "r-2"
    assert "was cached" in hit["cache"]["explanation"]
    miss = client.get("/api/runs/r-2/steps/train").json()
    assert miss["cache"]["cached"] is False
    assert any("lr" in r for r in miss["cache"]["reasons"])
    failed = client.get("/api/runs/r-3/steps/train").json()
    assert failed["status"] == "failed"
    assert "the loss diverged" in failed["error"]
    assert "ValueError" in failed["traceback"]


def test_logs_are_served_as_text(client: TestClient) -> None:
    r = client.get("/api/runs/r-2/steps/train/logs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "training with lr=0.2" in r.text


def test_previews_are_bounded_and_never_load_pickles(client: TestClient) -> None:
    base = "/api/runs/r-1/steps"
    table = client.get(f"{base}/load/outputs/table/preview").json()
    assert table["kind"] == "table" and table["num_rows"] == 5
    assert [c["name"] for c in table["columns"]] == ["x", "kind"]
    assert table["rows"][1] == [1, "b"]
    assert table["statistics"]["columns"]["x"]["mean"] == pytest.approx(2.0)
    array = client.get(f"{base}/load/outputs/array/preview").json()
    summary = array["summary"]
    assert (array["kind"], summary["shape"], summary["dtype"]) == ("array", [5], "float64")
    assert summary["max"] == 4.0
    value = client.get(f"{base}/train/outputs/accuracy/preview").json()
    assert (value["kind"], value["value"]) == ("value", pytest.approx(1.0))
    h.LOADS.clear()
    model = client.get(f"{base}/train/outputs/model/preview").json()
    assert model["kind"] == "not loaded" and "pickle-based" in model["note"]
    assert h.LOADS == []
    big = client.get(f"{base}/train/outputs/notes/preview").json()
    assert big["value"] is None and "too big to show" in big["note"]


def test_artifacts_are_found_only_by_recorded_id(client: TestClient) -> None:
    run = client.get("/api/runs/r-1").json()
    art_id = run["steps"][0]["outputs"]["table"]["artifact_id"]
    art = client.get(f"/api/artifacts/{art_id}").json()
    assert art["producer"] == {"run": "r-1", "step": "load", "output": "table"}
    # Lineage: r-2's load was a cache hit, so r-2's train read r-1's table too.
    readers = {(c["run"], c["step"], c["input"]) for c in art["consumers"]}
    assert {("r-1", "train", "table"), ("r-2", "train", "table")} <= readers
    page = client.get(f"/artifacts/{art_id}").text
    assert "r-2 / train" in page
    missing = client.get("/api/artifacts/999999")
    assert missing.status_code == 404 and "No artifact #999999" in missing.json()["detail"]
    # Paths and URIs are not names of anything here.
    assert client.get("/api/artifacts/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "/api/pipelines/train_pipelin/runs",
            "No pipeline named 'train_pipelin' has run on this stack. Known pipelines: "
            "'train_pipeline'. Did you mean 'train_pipeline'?",
        ),
        ("/api/runs/r-9", "No run named 'r-9'"),
        (
            "/api/runs/r-1/steps/trian",
            "Run 'r-1' has no step 'trian'. Known steps: 'load', 'train'. Did you mean 'train'?",
        ),
        (
            "/api/runs/r-1/steps/trian/logs",
            "Run 'r-1' has no step 'trian'. Known steps: 'load', 'train'. Did you mean 'train'?",
        ),
        (
            "/api/runs/r-1/steps/train/outputs/acuracy/preview",
            "Step 'train' has no output 'acuracy'. Known outputs: 'accuracy', 'label', 'model', "
            "'notes'. Did you mean 'accuracy'?",
        ),
    ],
)
def test_unknown_names_are_404_with_the_python_api_message(
    client: TestClient, url: str, expected: str
) -> None:
    r = client.get(url)
    assert r.status_code == 404
    assert r.json()["detail"].startswith(expected)


@pytest.mark.parametrize(
    "url",
    [
        "/api/pipelines/train_pipeline/runs?limit=0",
        "/api/pipelines/train_pipeline/runs?limit=501",
        "/api/pipelines/train_pipeline/runs?offset=-1",
        "/api/pipelines/train_pipeline/runs?status=done",
        "/api/pipelines/train_pipeline/runs?newest_first=maybe",
        "/api/artifacts/abc",
        "/api/diff?a=r-1",
        "/api/diff?a=r-1&b=",
    ],
)
def test_bad_parameters_are_422(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][0] in ("query", "path")


def test_the_openapi_schema_lists_every_route(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/api/pipelines",
        "/api/pipelines/{pipeline}/runs",
        "/api/runs/{run}",
        "/api/runs/{run}/steps/{step}",
        "/api/runs/{run}/steps/{step}/logs",
        "/api/runs/{run}/steps/{step}/outputs/{output}/preview",
        "/api/diff",
    }
    assert not any(p.startswith("/runs") for p in paths)  # pages are not API


def test_the_api_is_read_only(client: TestClient) -> None:
    for method in ("post", "put", "delete", "patch"):
        r = client.request(method.upper(), "/api/runs/r-1")
        assert r.status_code == 405, method


def test_an_unexpected_error_is_a_500_without_a_traceback(sqlite_repo: Repository) -> None:
    from dashboard_support import client_for

    client, source = client_for(sqlite_repo)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals at /home/me/code.py line 3")

    source.run_view = broken  # type: ignore[method-assign]
    for url in ("/api/runs/r-1", "/runs/r-1"):
        r = client.get(url)
        assert r.status_code == 500
        assert "Traceback" not in r.text and "secret internals" not in r.text
        assert "Internal error (RuntimeError)" in r.text
    source.store.dispose()


def test_the_diff_is_the_run_diff_engines(client: TestClient, backend_repo: Repository) -> None:
    got = client.get("/api/diff", params={"a": "r-1", "b": "r-2"}).json()
    expected = backend_repo.diff("r-1", "r-2").to_dict()
    assert got == json.loads(json.dumps(expected, default=str))
    assert client.get("/api/diff", params={"a": "r-1", "b": "nope"}).status_code == 404


def _queries(source: Any, fn: Any) -> int:
    with StatementCounter(source.store) as counter:
        fn()
    return counter.queries


def test_pages_cost_a_fixed_number_of_queries(sqlite_repo: Repository) -> None:
    from dashboard_history import TrainConfig, load, train, train_pipeline
    from dashboard_support import client_for

    client, source = client_for(sqlite_repo)
    url = "/api/pipelines/train_pipeline/runs"
    before = _queries(source, lambda: client.get(url))
    run_before = _queries(source, lambda: client.get("/api/runs/r-2"))
    for i in range(4):
        train_pipeline(load(), train(config=TrainConfig(lr=i + 1.0))).run(run_name=f"more-{i}")
    assert client.get(url).json()["total"] == 8
    # Tags cost one query for the whole page (and one for a run).
    assert _queries(source, lambda: client.get(url)) == before == 6
    assert run_before == 5
    source.store.dispose()


def test_the_runs_page_pages_and_filters_without_javascript(
    sqlite_repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashboard_support import client_for

    from runstack.dashboard import _pages

    monkeypatch.setattr(_pages, "PER_PAGE", 3)
    client, source = client_for(sqlite_repo)
    first = client.get("/pipelines/train_pipeline").text
    assert "page 1 of 2" in first and 'href="?page=2"' in first
    assert all(f">r-{i}</a>" in first for i in (4, 3, 2)) and ">r-1</a>" not in first
    second = client.get("/pipelines/train_pipeline?page=2").text
    assert ">r-1</a>" in second and "page 2 of 2" in second
    failed = client.get("/pipelines/train_pipeline?status=failed").text
    assert ">r-3</a>" in failed and ">r-2</a>" not in failed and "1 run matching" in failed
    bad = client.get("/pipelines/train_pipeline?page=0")
    assert bad.status_code == 422 and "page" in bad.text and "<html" in bad.text
    missing = client.get("/pipelines/nope")
    assert (
        missing.status_code == 404 and "Known pipelines: &#39;train_pipeline&#39;" in missing.text
    )
    source.store.dispose()
