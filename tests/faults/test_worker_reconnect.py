"""A worker never exits because Redis went away (workers/broker.py): a real worker with
a task in hand while its Redis stops and comes back; and the kombu code path it guards,
against the installed kombu, with the unacknowledged message kept for redelivery."""

# Fixtures come from tests.pipeline_support by import, which ruff reads as redefinitions.

from __future__ import annotations

import time

import kombu
import pytest

from tests import factories
from tests.pipeline_support import RedisServer, wait_for
from workers import broker


def _finalized_event_id(db, invoice):
    row = db.execute(
        "SELECT id FROM events WHERE type = 'invoice.finalized' AND data->'object'->>'id' = %s",
        (invoice["id"],),
    ).fetchone()
    return row["id"]


def test_a_worker_with_a_task_in_hand_survives_redis_going_away(
    papi, db, worker, receiver, private_redis
):
    # given a delivery in hand: the receiver takes 3 s to answer (the timeout is 5 s)
    receiver.delay = 3
    first = _finalized_event_id(db, factories.open_invoice(papi, 700))
    wait_for(lambda: receiver.connections, 20, "the delivery to be in hand")
    # when Redis goes away meanwhile, and comes back 3 s later
    private_redis.stop()
    time.sleep(3)
    private_redis.start()
    # then the worker is still running a while later, and reconnects
    time.sleep(5)
    assert worker.running, worker.log()[-6000:]
    assert "Unrecoverable error" not in worker.log()
    # and it keeps working: the next event is delivered, and the one in hand too
    receiver.delay = 0
    second = _finalized_event_id(db, factories.open_invoice(papi, 800))
    wait_for(lambda: second in receiver.event_ids(), 30, "the next delivery after the outage")
    wait_for(lambda: first in receiver.event_ids(), 90, "the delivery that was in hand")
    assert worker.running


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def _unacked_message(url: str, transport: str | None) -> tuple[kombu.Connection, object]:
    """A connection whose channel holds one message unacknowledged (acks late)."""
    conn = kombu.Connection(url, transport=transport)
    queue = kombu.Queue("tally-probe")
    with conn.Producer() as producer:
        producer.publish({"n": 1}, routing_key="tally-probe", declare=[queue])
    message = queue(conn.default_channel).get(no_ack=False)
    assert message is not None and message.payload == {"n": 1}
    return conn, queue


@pytest.mark.parametrize(
    ("transport", "raised"),
    [(None, AttributeError), (broker.TRANSPORT, None)],
    ids=["kombu", "guarded"],
)
def test_a_channel_closed_after_its_transport_was_detached(redis_server, transport, raised):
    """Celery's reconnect (consumer.on_connection_error_after_connected) collects the
    connection, which detaches the transport (kombu 5.7 Connection._do_close_transport)
    even when closing the channel failed on the dead socket, then closes the connection:
    the channel's close restores its unacked messages through _connparams."""
    conn, queue = _unacked_message(redis_server.url, transport)
    conn._do_close_transport()  # what collect() leaves behind
    if raised is None:
        conn.close()  # a connection error inside, which kombu swallows
    else:
        with pytest.raises(raised, match="hostname"):
            conn.close()  # the worker's "Unrecoverable error"
        return

    # the message stayed in Redis's unacked index, and once older than the visibility
    # timeout any worker's channel puts it back on its queue: delivered again
    other = kombu.Connection(
        redis_server.url, transport=broker.TRANSPORT, transport_options={"visibility_timeout": 0}
    )
    channel = other.default_channel
    assert channel.client.hlen(channel.qos.unacked_key) == 1
    time.sleep(0.01)
    channel.qos.restore_visible(num=100, interval=1)
    again = queue(channel).get(no_ack=True)
    assert again is not None and again.payload == {"n": 1}
    other.close()
