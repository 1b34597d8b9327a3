"""scripts/demo_check.py: compares two brokers record by record, outside kafkasnap (independent client)."""
import sys

from confluent_kafka import Consumer, TopicPartition, KafkaError

source, target = sys.argv[1], sys.argv[2]
TOPICS = {"order.created": 3, "order.updated": 3, "user.registered": 2}


def read(bootstrap, topic, partitions):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "demo-check", "enable.auto.commit": False,
                         "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    records, done = {p: [] for p in range(partitions)}, set()
    while len(done) < partitions:
        message = consumer.poll(10)
        if message is None:
            raise SystemExit(f"timed out reading {topic} from {bootstrap}")
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                done.add(message.partition())
                continue
            raise SystemExit(str(message.error()))
        records[message.partition()].append(
            (message.key(), message.value(), message.headers(), message.timestamp()))
    consumer.close()
    return records


total = 0
for topic, partitions in TOPICS.items():
    a, b = read(source, topic, partitions), read(target, topic, partitions)
    for p in range(partitions):
        if a[p] != b[p]:
            raise SystemExit(f"MISMATCH in {topic}/{p}: source {len(a[p])} records, target {len(b[p])}")
        total += len(a[p])

group = Consumer({"bootstrap.servers": target, "group.id": "billing", "enable.auto.commit": False})
committed = group.committed([TopicPartition("order.created", p) for p in range(3)], timeout=10)
offsets = [tp.offset for tp in committed]
if offsets != [300, 400, 500]:
    raise SystemExit(f"MISMATCH in group billing offsets on target: {offsets}")
print(f"independent check: {total} records identical (key, value, headers, timestamp) and group offsets {offsets}")
