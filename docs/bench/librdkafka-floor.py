"""What librdkafka alone costs at a fixed produce rate: the floor under outboxd's steady-state CPU.

A bare producer (confluent-kafka, i.e. librdkafka) sends ~1 KB records at RATE msg/s for 15 s to
a topic of PARTITIONS partitions, with outboxd's producer defaults (linger.ms 10, idempotence,
murmur2_random), and prints the process's CPU in cores. Python's own loop is included, so this is
an upper bound on librdkafka's share. See docs/benchmarks.md ("The librdkafka floor").

    python3 -m venv /tmp/floor && /tmp/floor/bin/pip install confluent-kafka==2.16.1
    tansu broker --listener-url tcp://127.0.0.1:19093 \
        --advertised-listener-url tcp://127.0.0.1:19093 --storage-engine memory://tansu/ &
    /tmp/floor/bin/python docs/bench/librdkafka-floor.py 127.0.0.1:19093 1000 [PARTITIONS] [LINGER_MS]
"""

import os
import sys
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, rate = sys.argv[1], int(sys.argv[2])
partitions = int(sys.argv[3]) if len(sys.argv) > 3 else 4
linger = sys.argv[4] if len(sys.argv) > 4 else "10"
topic = f"floor-{uuid.uuid4().hex[:8]}"
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result()
producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "linger.ms": linger,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
    }
)
acked = 0


def on_delivery(err, _msg):
    global acked
    if err is None:
        acked += 1


secs, period, payload = 15.0, 1.0 / rate, "x" * 1000
start, cpu0 = time.time(), os.times()
n = 0
while time.time() - start < secs:
    producer.produce(topic, key=str(n % 100), value=payload, on_delivery=on_delivery)
    n += 1
    producer.poll(0)
    delay = start + n * period - time.time()
    if delay > 0:
        time.sleep(delay)
producer.flush(10)
cpu1 = os.times()
cores = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / secs
print(
    f"rate {rate} msg/s, {partitions} partitions, linger.ms {linger}: sent {n}, acked {acked}, "
    f"{cores:.3f} cores = {cores * 10000 / rate:.2f} cores per 10k msg/s"
)
