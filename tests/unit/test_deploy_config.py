"""The image, compose.yaml and the scrape config in docs/observability.md agree: every
Celery process serves its metrics on the port the image sets, and Prometheus can reach it."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile

import pytest
import yaml

from tests.conftest import ROOT


def _image_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().split("AS runtime", 1)[1]
    return dict(re.findall(r"\b([A-Z_]+)=(\S+?)\s*(?:\\|$)", text, re.MULTILINE))


def test_celery_processes_serve_metrics_on_the_port_the_image_sets_and_compose_exposes():
    port = _image_env().get("TALLY_WORKER_METRICS_PORT")
    assert port, "the image sets no metrics port for its Celery processes"
    exposed = re.search(r"^EXPOSE (.+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed and port in exposed.group(1).split()
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    for name in ("worker", "deliveries"):
        assert port in [str(p) for p in services[name].get("expose", [])], name


def test_the_documented_scrape_config_covers_every_process_that_serves_metrics():
    doc = (ROOT / "docs" / "observability.md").read_text()
    port = _image_env()["TALLY_WORKER_METRICS_PORT"]
    [config] = re.findall(r"```yaml\n(scrape_configs:.*?)```", doc, re.DOTALL)
    targets = {
        (name, str(sd["port"]))
        for job in yaml.safe_load(config)["scrape_configs"]
        for sd in job["dns_sd_configs"]
        for name in sd["names"]
    }
    assert targets == {("web", "8000"), ("worker", port), ("deliveries", port)}


@pytest.mark.timeout(300)
def test_the_installed_package_holds_the_migrations_and_no_dev_tooling(tmp_path):
    """What pip installs from this checkout (as the Dockerfile does): every migration
    inside the package, where service.migrate finds it, and nothing of devtools/."""
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("tally-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert migrations
    assert sorted(n.removeprefix("service/migrations/") for n in names if n.endswith(".sql")) == (
        migrations
    )
    assert {n.split("/")[0] for n in names if not n.startswith("tally-")} == {"service", "workers"}
    assert not [n for n in names if n.endswith(("localenv.py", "/dev.py"))]
