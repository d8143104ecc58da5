#!/usr/bin/env python3
"""Prints realistic rvbbit `unified_logs` rows as JSONEachRow, for the quick start.

Rows are written the way rvbbit writes them: every JSON column is Python's
json.dumps() of the logged object. Sessions belong to one cascade and hold a
system/user/assistant exchange per cell; some replies are structured output, some
requests use a list of content parts, and some calls happen outside any cascade.

Usage: scripts/sample-logs.py [--sessions N] [--seed S] > rows.jsonl
"""

import argparse
import datetime
import json
import random
import uuid

CASCADES = {
    "support_triage": ["classify", "draft_reply"],
    "sql_analyst": ["plan", "write_sql", "explain"],
    "doc_summarizer": ["summarize"],
}
TOPICS = [
    "a refund for order #{n} that arrived damaged",
    "why the nightly export to S3 failed with \"AccessDenied\"",
    "monthly revenue by region for Q{q}, excluding test accounts",
    "the difference between p50 and p95 latency in last week's report",
    "a customer in Zürich asking about VAT on invoice {n}",
    "summarising the incident review: 'cache stampede' on {n} nodes",
]


def now_minus(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def row(session, trace, cascade, cell, role, request, reply, age):
    return {
        "message_id": str(uuid.UUID(int=random.getrandbits(128))),
        "timestamp": now_minus(age),
        "timestamp_iso": now_minus(age).replace(" ", "T") + "Z",
        "session_id": session,
        "trace_id": trace,
        "node_type": "agent" if role == "assistant" else "message",
        "role": role,
        "cascade_id": cascade,
        "cell_name": cell,
        "model": "openai/gpt-4o-mini",
        "provider": "openrouter",
        "full_request_json": json.dumps(request) if request is not None else None,
        "content_json": json.dumps(reply) if reply is not None else None,
        "tokens_in": random.randint(200, 1500),
        "tokens_out": random.randint(20, 400),
        "cost": round(random.uniform(0.0001, 0.01), 6),
        "duration_ms": round(random.uniform(300, 4000), 1),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    random.seed(args.seed)
    age = 3600 * 24
    for s in range(args.sessions):
        cascade = random.choice(list(CASCADES))
        session = f"sess-{s:04d}"
        for cell in CASCADES[cascade]:
            topic = random.choice(TOPICS).format(n=random.randint(100, 999), q=random.randint(1, 4))
            system = f"You are the {cell.replace('_', ' ')} step of the {cascade} cascade. Be precise and cite the data you used."
            if random.random() < 0.2:
                content = [{"type": "text", "text": f"Please handle {topic}."},
                           {"type": "image_url", "image_url": {"url": "https://example.invalid/screenshot.png"}},
                           {"type": "text", "text": "The screenshot shows the error — see above."}]
            else:
                content = f"Please handle {topic}.\nContext: session {session}, step {cell}."
            messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
            request = {"model": "openai/gpt-4o-mini", "messages": messages, "temperature": 0.2}
            if random.random() < 0.25:
                reply = {"category": random.choice(["billing", "bug", "question"]), "confidence": round(random.random(), 2)}
            else:
                reply = f"Handled {topic}: here is what I found, step by step…"
            age -= random.randint(5, 120)
            base = f"{session}-{cell}"
            print(json.dumps(row(session, base + "-sys", cascade, cell, "system", None, system, age)))
            print(json.dumps(row(session, base + "-user", cascade, cell, "user", None, content, age)))
            print(json.dumps(row(session, base + "-reply", cascade, cell, "assistant", request, reply, age)))
    # Calls outside any cascade are logged too, and never become examples.
    for i in range(5):
        request = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": f"ad-hoc question {i}"}]}
        print(json.dumps(row(f"adhoc-{i}", f"adhoc-{i}-reply", None, None, "assistant", request, f"ad-hoc answer {i}", 60)))


if __name__ == "__main__":
    main()
