"""The chaos run's own logic, without a stack: the Procfile it starts, and the plans
whose expectations its verdict rests on. `.ci/run` runs the real thing (--short)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench.chaos.plans import InvoicePlan, Payment, make_plans
from devtools.procfile import ROOT, localize, read_procfile


def test_the_project_procfile_has_what_the_chaos_run_starts() -> None:
    procs = read_procfile(ROOT / "Procfile")
    assert {"release", "web", "worker", "beat"} <= set(procs)


def test_read_procfile_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("# comment\n\nweb: gunicorn app --bind 0.0.0.0:${PORT:-8000}\nbeat: b\n")
    assert read_procfile(procfile) == {
        "web": "gunicorn app --bind 0.0.0.0:${PORT:-8000}",
        "beat": "b",
    }


def test_localize_binds_loopback_and_moves_tmp_paths_into_the_run_dir() -> None:
    command = "celery -A workers beat --schedule /tmp/celerybeat-schedule --bind 0.0.0.0:1"
    assert localize(command, Path("/run/x")) == (
        "celery -A workers beat --schedule /run/x/celerybeat-schedule --bind 127.0.0.1:1"
    )


@pytest.mark.parametrize("seed", range(5))
def test_plans_attach_only_what_fits_and_send_the_webhooks_asked_for(seed: int) -> None:
    plans = make_plans(200, 2000, random.Random(seed))
    assert {p.kind for p in plans} == {
        "full", "split", "partial", "overpay", "early", "record", "record_later", "credit",
    }  # fmt: skip
    assert all(plan.record_later == (plan.kind == "record_later") for plan in plans)
    assert sum(len(p.spec) for plan in plans for p in plan.payments) == 2000
    for plan in plans:
        # every PaymentIntent is within what remains when attached (before any success)
        assert all(0 < p.amount <= plan.total - plan.record for p in plan.payments)
        succeeding = sum(p.amount for p in plan.payments if p.succeeds) + plan.record
        if plan.kind == "overpay":
            assert succeeding > plan.total
        elif plan.kind == "partial":
            assert succeeding < plan.total
        else:
            assert succeeding == plan.total
        for payment in plan.payments:
            assert (payment.fate, 2) in payment.spec  # every PaymentIntent's outcome is sent
        if plan.kind == "credit":  # a negative item, and still something to pay
            assert min(plan.items) < 0 < plan.total


def test_expected_paid_counts_only_acknowledged_successes_of_attached_payments() -> None:
    ok = Payment(100, "payment_intent.succeeded", attached=True, success_acked=True)
    unacked = Payment(200, "payment_intent.succeeded", attached=True, success_acked=False)
    refused = Payment(400, "payment_intent.succeeded", attached=False, success_acked=True)
    failed = Payment(800, "payment_intent.payment_failed", attached=True)
    plan = InvoicePlan(0, "split", [1500], [ok, unacked, refused, failed], record=0)
    assert plan.expected_paid() == 100
    plan.record, plan.record_attached = 50, True
    assert plan.expected_paid() == 150


def test_a_record_that_clears_later_is_expected_paid_only_once_guaranteed() -> None:
    pi = Payment(600, "payment_intent.succeeded", attached=True, success_acked=True)
    plan = InvoicePlan(0, "record_later", [900], [pi], record=300, record_later=True)
    plan.record_attached = True
    assert plan.expected_paid() == 600  # attached, initiated: not money received yet
    plan.record_guaranteed = False  # the guaranteed report was refused
    assert plan.expected_paid() == 600
    plan.record_guaranteed = True
    assert plan.expected_paid() == 900


def test_an_unplanned_exit_is_reported_with_the_last_error_its_log_shows(tmp_path):
    from bench.chaos.stack import _last_error_line

    log = tmp_path / "worker.0.log"
    log.write_text(
        "ready\n"
        "consumer: Connection to broker lost\n"
        "Unrecoverable error: AttributeError(\"'NoneType' object has no attribute 'hostname'\")\n"
        '  File "kombu/transport/redis.py", line 1\n'
    )
    assert _last_error_line(log).startswith("Unrecoverable error: AttributeError")
    (tmp_path / "quiet.log").write_text("ready\nWarm shutdown\n")
    assert _last_error_line(tmp_path / "quiet.log") == ""
    assert _last_error_line(tmp_path / "missing.log") == ""
