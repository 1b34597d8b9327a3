"""scripts/demo_fill.py: fills a broker with the demo data set (orders, users, a consumer group)."""
import json
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
topics = [
    NewTopic("order.created", 3, 1),
    NewTopic("order.updated", 3, 1, config={"retention.ms": "604800000"}),
    NewTopic("user.registered", 2, 1, config={"cleanup.policy": "compact"}),
]
for future in admin.create_topics(topics).values():
    future.result()

producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
base = 1_764_000_000_000
for i in range(2500):
    order = {"order_id": f"o-{i:06d}", "customer": f"c-{i % 97}", "amount": round(i * 1.37 % 500, 2), "items": i % 5 + 1}
    headers = [("source", b"checkout"), ("trace-id", f"{i:032x}".encode())]
    if i % 10 == 0:
        headers.append(("retry", None))  # a header with a null value
    producer.produce("order.created", key=order["order_id"].encode(), value=json.dumps(order).encode(),
                     headers=headers, timestamp=base + i * 1000)
for i in range(1500):
    update = {"order_id": f"o-{i * 3 % 2500:06d}", "status": ["paid", "shipped", "delivered"][i % 3]}
    value = None if i % 50 == 0 else json.dumps(update).encode()  # some tombstones
    producer.produce("order.updated", key=update["order_id"].encode(), value=value, timestamp=base + i * 1500)
for i in range(1000):
    producer.produce("user.registered", key=f"c-{i % 300}".encode(),
                     value=json.dumps({"user": f"c-{i % 300}", "email": f"user{i}@example.com"}).encode(),
                     timestamp=base + i * 500)
producer.flush(60)

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing", "enable.auto.commit": False})
consumer.commit(offsets=[TopicPartition("order.created", p, 300 + 100 * p) for p in range(3)], asynchronous=False)
consumer.close()
print("filled: order.created 2500, order.updated 1500, user.registered 1000 records; group billing committed")
