#!/usr/bin/env python3
"""Faultline's exec client for etcd 3.4, through its v3 JSON gateway (standard library only).

As a client: one operation a line on stdin, one answer a line on stdout (README, "The exec
protocol"). Reads change nothing, so every read error is a fail; a put or txn is a fail only
when etcd refused it before proposing it, or it was never sent; anything else is info.
As `client.py leader ADDR`: prints the name of the member that member ADDR takes for leader.
"""
import base64, json, os, sys, urllib.error, urllib.request

REFUSED = {"etcdserver: no leader", "etcdserver: not capable", "etcdserver: rpc not supported for learner"}
b64 = lambda text: base64.b64encode(text.encode()).decode()
number = lambda kv: int(base64.b64decode(kv["value"]))

def call(addr, path, body, timeout):
    # hasleader: a member that knows no leader refuses at once instead of waiting 7 s.
    request = urllib.request.Request(f"http://{addr}/v3/{path}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json", "Grpc-Metadata-hasleader": "true"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")

def perform(addr, op, timeout):
    f, key, value = op["f"], op["key"], op["value"]
    if f == "read" and key.startswith("l"):
        answer = call(addr, "kv/range", {"key": b64(key + "/"), "range_end": b64(key + "0"),
                                         "sort_target": "CREATE", "sort_order": "ASCEND"}, timeout)
        return {"type": "ok", "value": [number(kv) for kv in answer.get("kvs", [])] or None}
    if f == "read":
        kvs = call(addr, "kv/range", {"key": b64(key)}, timeout).get("kvs", [])
        return {"type": "ok", "value": number(kvs[0]) if kvs else None}
    if f in ("write", "append"):
        path = key if f == "write" else f"{key}/{value:020}"
        call(addr, "kv/put", {"key": b64(path), "value": b64(str(value))}, timeout)
        return {"type": "ok"}
    compare = [{"key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(str(value[0]))}]
    put = [{"request_put": {"key": b64(key), "value": b64(str(value[1]))}}]
    answer = call(addr, "kv/txn", {"compare": compare, "success": put}, timeout)
    return {"type": "ok"} if answer.get("succeeded") else {"type": "fail", "error": "cas-mismatch"}

def classify(op, error):
    """What an error says: fail if the operation certainly did not happen, else info."""
    certain = op["f"] == "read"
    if isinstance(error, urllib.error.HTTPError):
        try:
            body = json.loads(error.read())
            reason = body.get("message") or body.get("error") or f"http {error.code}"
            certain = certain or reason in REFUSED or body.get("code") in (3, 8)
        except ValueError:
            reason = f"http {error.code}"
    elif isinstance(error, urllib.error.URLError) and isinstance(error.reason, ConnectionRefusedError):
        reason, certain = "connection refused", True
    else:
        reason = type(error).__name__
    return {"type": "fail" if certain else "info", "error": reason.removeprefix("etcdserver: ")}

def leader(addr):
    status = call(addr, "maintenance/status", {}, 0.5)
    members = call(addr, "cluster/member/list", {}, 0.5).get("members", [])
    for member in members:
        if member.get("ID") == status.get("leader", "0"):
            print(member.get("name") or member["peerURLs"][0].removeprefix("http://"))

def main():
    if sys.argv[1:2] == ["leader"]:
        return leader(sys.argv[2])
    home = os.environ["FAULTLINE_NODE"]
    addr = json.loads(os.environ["FAULTLINE_NODES"])[home]
    timeout = int(os.environ["FAULTLINE_TIMEOUT_MS"]) / 1000 * 0.8  # answer before the harness gives up
    for line in sys.stdin:
        op = json.loads(line)
        try:
            answer = perform(addr, op, timeout)
        except Exception as error:  # every failure is classified; none ends the client
            answer = classify(op, error)
        print(json.dumps({**answer, "node": home}), flush=True)

if __name__ == "__main__":
    main()
