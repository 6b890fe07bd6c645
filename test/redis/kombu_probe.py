"""Celery's transport (kombu) against the broker, configured exactly as Celery is.

  kombu_probe.py publish N   publish N messages "0".."N-1" to queue celery, one per 50 ms,
                             printing "sent i" after each (retries through a failover)
  kombu_probe.py drain       print every message body waiting in queue celery, one per line

Env: CELERY_BROKER_URL, CELERY_BROKER_TRANSPORT_OPTIONS (JSON), as the Secret celery-broker gives.
"""
import json
import os
import sys
import time

from kombu import Connection, Exchange, Queue

URL = os.environ["CELERY_BROKER_URL"]
OPTIONS = json.loads(os.environ["CELERY_BROKER_TRANSPORT_OPTIONS"])
QUEUE = Queue("celery", Exchange("celery", type="direct"), routing_key="celery")
# Generous publish retries: a Sentinel failover takes down-after plus a few seconds.
RETRY = {"max_retries": 60, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}


def publish(n: int) -> None:
    with Connection(URL, transport_options=OPTIONS) as conn:
        producer = conn.Producer()
        for i in range(n):
            producer.publish(
                str(i),
                exchange=QUEUE.exchange,
                routing_key="celery",
                declare=[QUEUE],
                retry=True,
                retry_policy=RETRY,
            )
            print(f"sent {i}", flush=True)
            time.sleep(0.05)


def drain() -> None:
    with Connection(URL, transport_options=OPTIONS) as conn:
        with conn.SimpleQueue(QUEUE) as q:
            while True:
                try:
                    msg = q.get(block=True, timeout=2)
                except q.Empty:
                    return
                print(msg.payload, flush=True)
                msg.ack()


if __name__ == "__main__":
    if sys.argv[1] == "publish":
        publish(int(sys.argv[2]))
    else:
        drain()
