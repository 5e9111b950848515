"""The workers' Redis transport: kombu's, with one guard against a reconnect crash.

kombu 5.7.0 (kombu/transport/redis.py): when Redis goes away, Celery's consumer
collects and closes its broker connection (celery/worker/consumer/consumer.py,
on_connection_error_after_connected: `connection.collect()`, then
`connection.close()`). collect() detaches the transport from its Connection
(kombu/connection.py, `_do_close_transport` sets `transport.client = None`) while
the consumer's channel can still be open. Closing that channel then restores its
unacknowledged messages: virtual Channel.close -> QoS.restore_unacked_once ->
redis QoS.restore_unacked -> Channel.conn_or_acquire -> Channel.pool ->
Channel._connparams, which reads `self.connection.client.hostname` off None. An
AttributeError is no connection error to Celery, so the worker exits
("Unrecoverable error: AttributeError(\"'NoneType' object has no attribute
'hostname'\")"), and a late ack of a task that finishes meanwhile fails the same
way when the event loop stops ("Error on stopping Hub"). The chaos run saw a
worker exit so in 3 of 6 CI runs on one day; no kombu release fixes it.

The guard turns that read into the connection error it is: kombu and Celery then
treat it as the lost connection they already handle, and the worker reconnects.
Nothing is lost: the channel's unacknowledged messages stay in Redis's unacked
index (the redis QoS keeps them there until an ack), and any worker's channel
restores them to their queue once they are older than the visibility timeout
(QoS.restore_visible). Every task is idempotent (acks late), so a task that ran
and whose ack was lost with the channel runs again harmlessly.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

# The app's `broker_transport` (workers/app.py): kombu loads it by this path.
TRANSPORT = "workers.broker:Transport"


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel
