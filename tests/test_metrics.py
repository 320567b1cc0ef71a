"""What operators watch, against a real `policyqa serve`: /metrics scraped and parsed as Prometheus text, and
a request id on every response and in the log line of every request."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from policyqa.api.observe import failure_rule

from .test_service import AUTH, OCEAN, TOKEN, wait_job


def scrape(url: str) -> dict[str, list]:
    resp = httpx.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=")
    return {f.name: f.samples for f in text_string_to_metric_families(resp.text)}


def value(samples: list, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert found, (name, labels, samples)
    return float(sum(found))


def test_metrics_are_prometheus_text_and_say_what_happened(corpus: Path, server_factory) -> None:
    (corpus / "big.txt").write_text("大" * 3000, encoding="utf-8")  # over the limit below: not indexed
    srv = server_factory(corpus, POLICYQA_ADMIN_TOKEN=TOKEN, POLICYQA_MAX_UPLOAD_BYTES="5000")
    assert httpx.get(f"{srv.url}/api/search", params={"q": "高新技术企业奖励多少"}).status_code == 200
    assert httpx.get(f"{srv.url}/api/search", params={"q": "明天北京下雨吗"}).json()["confident"] is False
    assert httpx.get(f"{srv.url}/api/documents/0123456789ab/text").status_code == 404
    up = httpx.post(f"{srv.url}/api/documents", files={"file": ("海洋.txt", OCEAN)}, headers=AUTH)
    assert wait_job(srv.url, up.json()["job"]["id"])["state"] == "done"
    m = scrape(srv.url)
    requests = m["policyqa_http_requests"]
    assert value(requests, "policyqa_http_requests_total", route="/api/search", method="GET", status="200") == 2
    # by route template, never the path itself (labels stay few)
    assert value(requests, "policyqa_http_requests_total", route="/api/documents/{doc_id}/text", status="404") == 1
    assert value(m["policyqa_search_seconds"], "policyqa_search_seconds_count") == 2
    assert value(m["policyqa_searches_not_confident"], "policyqa_searches_not_confident_total") == 1
    assert value(m["policyqa_documents"], "policyqa_documents") == 3
    assert value(m["policyqa_passages"], "policyqa_passages") >= 3
    assert 0 <= value(m["policyqa_snapshot_age_seconds"], "policyqa_snapshot_age_seconds") < 300
    assert value(m["policyqa_jobs"], "policyqa_jobs", state="done") >= 2
    assert value(m["policyqa_job_seconds"], "policyqa_job_seconds_count", state="done") >= 2
    rule = "POLICYQA_MAX_UPLOAD_BYTES"
    assert value(m["policyqa_parse_failures"], "policyqa_parse_failures", rule=rule) == 1
    assert value(m["process_resident_memory_bytes"], "process_resident_memory_bytes") > 10 * 2**20
    assert value(m["policyqa_threads"], "policyqa_threads") >= 2


def test_every_response_carries_a_request_id_that_the_log_line_holds(corpus: Path, server_factory) -> None:
    srv = server_factory(corpus, POLICYQA_MAX_BODY_BYTES="100")
    mine = httpx.get(f"{srv.url}/api/health", headers={"X-Request-ID": "user-report-42"})
    assert mine.headers["x-request-id"] == "user-report-42"
    forged = httpx.get(f"{srv.url}/api/health", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["x-request-id"])
    answers = [
        httpx.get(f"{srv.url}/"),  # the page
        httpx.get(f"{srv.url}/api/nothing-here"),
        httpx.post(f"{srv.url}/api/search", content=b"x" * 500, headers={"Content-Type": "application/json"}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 413]
    ids = [a.headers["x-request-id"] for a in answers]
    assert len(set(ids)) == 3
    time.sleep(0.5)
    log = srv.log.read_text(encoding="utf-8")
    assert re.search(r"GET /api/health 200 \S+ms id=user-report-42", log)
    for answer, rid in zip(answers, ids, strict=True):
        line = next(line for line in log.splitlines() if rid in line)
        assert f" {answer.status_code} " in line
    assert "Traceback" not in log


def test_parse_failures_are_counted_by_the_rule_they_name() -> None:
    assert failure_rule("a.html: has 300 HTML elements, over the limit of 200 (POLICYQA_MAX_NODES)") == (
        "POLICYQA_MAX_NODES"
    )
    assert failure_rule("a.txt: the file is 9000 bytes; the limit is 5000 bytes") == "POLICYQA_MAX_UPLOAD_BYTES"
    assert failure_rule("\\xb9.txt: the file name is not UTF-8 (another encoding); rename the file") == "file_name"
    assert failure_rule("x.txt: the file is a symbolic link; links are not followed") == "symbolic_link"
