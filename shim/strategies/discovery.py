"""Endpoints (core/v1) and EndpointSlices (discovery.k8s.io/v1): what they may hold.

Checks and messages follow upstream's validation of the two kinds: addresses must be IPs
(of the slice's family) and may not be unspecified, loopback or link-local; hostnames are
DNS labels, node names DNS subdomains; ports have known protocols, DNS-label names (unique
in a slice, required when an Endpoints subset has several) and, in Endpoints, numbers
1-65535; a slice holds at most 1000 endpoints of at most 100 addresses, and its addressType
never changes. As upstream, an update that leaves the addresses as they were is not held
to today's rules for them (older servers accepted more).
"""
from __future__ import annotations

import ipaddress

from shim.api import validation as v
from shim.api.strategy import Strategy, strategy_for
from shim.strategies.networking import ip_errors

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
PROTOCOLS = ("SCTP", "TCP", "UDP")
MAX_ENDPOINTS = 1000
MAX_ADDRESSES = 100
MAX_PORTS = 20000
MAX_TOPOLOGY_LABELS = 16
MAX_HINTS = 8


def legacy_ip_errors(value: str) -> list[str]:
    """The check of fields that predate strict IP rules: no leading zeros or IPv4-mapped
    addresses, but any spelling otherwise."""
    return [m for m in ip_errors(value) if not m.startswith("must be in canonical form")]


def endpoint_ip_errors(path: str, value: str) -> list:
    """Addresses an endpoint may not have."""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return [v.invalid(path, value, "must be a valid IP address")]
    errs = []
    if ip.is_unspecified:
        errs.append(v.invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(v.invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local and not ip.is_multicast:
        errs.append(v.invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if (ip.version == 4 and ip in ipaddress.ip_network("224.0.0.0/24")) or \
            (ip.version == 6 and ip in ipaddress.ip_network("ff02::/16")):
        errs.append(v.invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
    return errs


def _dns_label(path: str, value: str) -> list:
    return [v.invalid(path, value, m) for m in v.is_dns1123_label(value)]


def _node_name(path: str, value: str) -> list:
    return [v.invalid(path, value, m) for m in v.is_dns1123_subdomain(value)]


def _qualified_name(path: str, value: str) -> list:
    return [v.invalid(path, value, m) for m in v.is_qualified_name(value)]


@strategy_for("discovery.k8s.io", "endpointslices")
class EndpointSliceStrategy(Strategy):
    def default(self, obj: dict) -> None:
        for port in obj.get("ports") or ():
            if isinstance(port, dict):
                port.setdefault("name", "")
                port.setdefault("protocol", "TCP")

    def validate_spec(self, obj: dict) -> list:
        return self._validate(obj, None)

    def spec_changed(self, new: dict, old: dict) -> bool:
        """A slice has no spec/status split: any change outside metadata, or to its labels,
        is a new generation (the EndpointSlice controller tells its own writes by it)."""
        return super().spec_changed(new, old) or \
            (new.get("metadata") or {}).get("labels") != (old.get("metadata") or {}).get("labels")

    def validate_update(self, new: dict, old: dict) -> list:
        return (v.validate_object_meta_update(new.get("metadata"), old.get("metadata"))
                + self._validate(new, old)
                + v.validate_immutable(new.get("addressType"), old.get("addressType"), "addressType"))

    def _validate(self, obj: dict, old: dict | None) -> list:
        errs = []
        family = obj.get("addressType") or ""
        if not family:
            errs.append(v.required("addressType"))
        elif family not in ADDRESS_TYPES:
            errs.append(v.not_supported("addressType", family, ADDRESS_TYPES))
        errs += self._ports(obj.get("ports") or [])
        endpoint_errs = self._endpoints(obj.get("endpoints") or [], family)
        if endpoint_errs and old is not None and (old.get("endpoints") or []) == (obj.get("endpoints") or []):
            endpoint_errs = []
        return errs + endpoint_errs

    @staticmethod
    def _endpoints(endpoints: list, family: str) -> list:
        if len(endpoints) > MAX_ENDPOINTS:
            return [v.too_many("endpoints", len(endpoints), MAX_ENDPOINTS)]
        errs = []
        for i, ep in enumerate(endpoints):
            base = f"endpoints[{i}]"
            path = f"{base}.addresses"
            addrs = ep.get("addresses") or []
            if not addrs:
                errs.append(v.required(path, "must contain at least 1 address"))
            elif len(addrs) > MAX_ADDRESSES:
                errs.append(v.too_many(path, len(addrs), MAX_ADDRESSES))
            for j, addr in enumerate(addrs):
                if family == "IPv4":
                    bad = legacy_ip_errors(addr)
                    if bad:
                        errs += [v.invalid(f"{path}[{j}]", addr, m) for m in bad]
                        continue
                    if ipaddress.ip_address(addr).version != 4:
                        errs.append(v.invalid(path, addr, "must be an IPv4 address"))
                    errs += endpoint_ip_errors(f"{path}[{j}]", addr)
                elif family == "IPv6":
                    bad = ip_errors(addr)
                    if bad:
                        errs += [v.invalid(f"{path}[{j}]", addr, m) for m in bad]
                        continue
                    if ipaddress.ip_address(addr).version != 6:
                        errs.append(v.invalid(path, addr, "must be an IPv6 address"))
                    errs += endpoint_ip_errors(f"{path}[{j}]", addr)
                elif family == "FQDN":
                    errs += _fqdn(f"{path}[{j}]", addr)
            if ep.get("nodeName") is not None:
                errs += _node_name(f"{base}.nodeName", ep["nodeName"])
            topology = ep.get("deprecatedTopology") or {}
            if len(topology) > MAX_TOPOLOGY_LABELS:
                errs.append(v.too_many(f"{base}.deprecatedTopology", len(topology), MAX_TOPOLOGY_LABELS))
            errs += v.validate_labels(topology, f"{base}.deprecatedTopology")
            if ep.get("hostname") is not None:
                errs += _dns_label(f"{base}.hostname", ep["hostname"])
            if ep.get("hints") is not None:
                errs += _hints(f"{base}.hints", ep["hints"])
        return errs

    @staticmethod
    def _ports(ports: list) -> list:
        if len(ports) > MAX_PORTS:
            return [v.too_many("ports", len(ports), MAX_PORTS)]
        errs, names = [], []
        for i, port in enumerate(ports):
            base = f"ports[{i}]"
            name = port.get("name") or ""
            if name:
                errs += _dns_label(f"{base}.name", name)
            if name in names:
                errs.append(v.duplicate(f"{base}.name", name))
            else:
                names.append(name)
            protocol = port.get("protocol")
            if protocol is None:
                errs.append(v.required(f"{base}.protocol"))
            elif protocol not in PROTOCOLS:
                errs.append(v.not_supported(f"{base}.protocol", protocol, PROTOCOLS))
            if port.get("appProtocol") is not None:
                errs += _qualified_name(f"{base}.appProtocol", port["appProtocol"])
        return errs


def _fqdn(path: str, value: str) -> list:
    if not value:
        return [v.required(path)]
    if len(value) > 253:
        return [v.too_long(path, 253)]
    errs = [v.invalid(path, value, m) for m in v.is_dns1123_subdomain(value)]
    if not errs and "." not in value:
        errs.append(v.invalid(path, value, "should be a domain with at least two segments separated by dots"))
    return errs


def _hints(path: str, hints: dict) -> list:
    errs = []
    for field, check in (("forZones", lambda p, n: [v.invalid(p, n, m) for m in v.is_valid_label_value(n)]),
                         ("forNodes", _node_name)):
        items = hints.get(field) or []
        if len(items) > MAX_HINTS:
            errs.append(v.too_many(f"{path}.{field}", len(items), MAX_HINTS))
            continue
        seen = []
        for i, item in enumerate(items):
            p = f"{path}.{field}[{i}].name"
            name = item.get("name") or ""
            if name in seen:
                errs.append(v.duplicate(p, name))
            else:
                seen.append(name)
            errs += check(p, name)
    return errs


@strategy_for("", "endpoints")
class EndpointsStrategy(Strategy):
    allow_create_on_update = True

    def default(self, obj: dict) -> None:
        for subset in obj.get("subsets") or ():
            for port in (subset.get("ports") or ()) if isinstance(subset, dict) else ():
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")

    def validate_spec(self, obj: dict) -> list:
        return self._subsets(obj.get("subsets") or [])

    def validate_update(self, new: dict, old: dict) -> list:
        errs = self._subsets(new.get("subsets") or [])
        if errs and (new.get("subsets") or []) == (old.get("subsets") or []):
            errs = []
        return v.validate_object_meta_update(new.get("metadata"), old.get("metadata")) + errs

    @staticmethod
    def _subsets(subsets: list) -> list:
        errs = []
        for i, subset in enumerate(subsets):
            base = f"subsets[{i}]"
            if not subset.get("addresses") and not subset.get("notReadyAddresses"):
                errs.append(v.required(base, "must specify `addresses` or `notReadyAddresses`"))
            for field in ("addresses", "notReadyAddresses"):
                for j, addr in enumerate(subset.get(field) or ()):
                    errs += _endpoint_address(f"{base}.{field}[{j}]", addr)
            ports = subset.get("ports") or []
            for j, port in enumerate(ports):
                errs += _endpoint_port(f"{base}.ports[{j}]", port, require_name=len(ports) > 1)
        return errs


def _endpoint_address(path: str, addr: dict) -> list:
    ip = addr.get("ip") or ""
    errs = [v.invalid(f"{path}.ip", ip, m) for m in legacy_ip_errors(ip)]
    if addr.get("hostname"):
        errs += _dns_label(f"{path}.hostname", addr["hostname"])
    if addr.get("nodeName") is not None:
        errs += _node_name(f"{path}.nodeName", addr["nodeName"])
    return errs + endpoint_ip_errors(f"{path}.ip", ip)


def _endpoint_port(path: str, port: dict, require_name: bool) -> list:
    errs = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(v.required(f"{path}.name"))
    elif name:
        errs += _dns_label(f"{path}.name", name)
    number = port.get("port")
    if not isinstance(number, int) or not 1 <= number <= 65535:
        errs.append(v.invalid(f"{path}.port", number, "must be between 1 and 65535, inclusive"))
    protocol = port.get("protocol")
    if not protocol:
        errs.append(v.required(f"{path}.protocol"))
    elif protocol not in PROTOCOLS:
        errs.append(v.not_supported(f"{path}.protocol", protocol, PROTOCOLS))
    if port.get("appProtocol") is not None:
        errs += _qualified_name(f"{path}.appProtocol", port["appProtocol"])
    return errs

