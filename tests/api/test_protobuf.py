"""The protobuf request decoder against bodies encoded by upstream's own Go serializer.

protobuf_cases.jsonl holds one case a line: "pb" is a request body as client-go encodes it
(k8s.io/apimachinery's protobuf serializer over k8s.io/api v0.37 types) and "json" is what
encoding/json gives for the same Go object, which is what the decoder must reproduce.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from shim.api import protobuf

CASES = [json.loads(line) for line in
         (Path(__file__).parent / "protobuf_cases.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['json']['kind']}" for i, c in enumerate(CASES)])
def test_decodes_like_go(case):
    got = protobuf.decode(base64.b64decode(case["pb"]))
    assert got == case["json"]
    assert json.dumps(got) == json.dumps(case["json"])  # the same key order as encoding/json


def test_explicit_zero_pointer_survives():
    deploy = next(c for c in CASES if c["json"]["kind"] == "Deployment")
    assert protobuf.decode(base64.b64decode(deploy["pb"]))["spec"]["replicas"] == 0


def test_rejects_non_protobuf_and_unknown_kinds():
    with pytest.raises(protobuf.ProtobufError, match="does not appear to be a protobuf message"):
        protobuf.decode(b'{"kind": "ConfigMap"}')
    # envelope: typeMeta{apiVersion "v9", kind "Nope"}, raw ""
    type_meta = b"\x0a\x02v9\x12\x04Nope"
    body = protobuf.MAGIC + b"\x0a" + bytes([len(type_meta)]) + type_meta + b"\x12\x00"
    with pytest.raises(protobuf.ProtobufError, match='no kind "Nope" is registered for version "v9"'):
        protobuf.decode(body)
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(protobuf.MAGIC + b"\x0a\x05\x0a")  # truncated


@pytest.mark.parametrize("ns,text", [
    (0, "0s"), (999, "999ns"), (1500, "1.5µs"), (1_000_000, "1ms"), (1_500_000_000, "1.5s"),
    (60_000_000_000, "1m0s"), (3_661_500_000_000, "1h1m1.5s"), (-2_000_000_000, "-2s"),
])
def test_go_duration(ns, text):
    assert protobuf.go_duration(ns) == text
