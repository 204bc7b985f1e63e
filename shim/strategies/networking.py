"""networking.k8s.io ServiceCIDRs and IPAddresses: the objects behind Service IP allocation.

A ServiceCIDR is a range Service IPs may come from (the control plane keeps the default one,
`kubernetes`); an IPAddress, named by the address itself, records who holds that address.
Creating the IPAddress is the reservation (shim/controllers/ipallocator.py), so its name
must be the one canonical spelling of the address: two spellings of one IP would be two
keys. Checks and messages follow upstream's networking validation.
"""
from __future__ import annotations

import ipaddress
import re

from shim.api import validation as v
from shim.api.strategy import Strategy, strategy_for

_IP_EXAMPLE = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_EXAMPLE = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
_DOTTED_V4 = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)$")


def ip_errors(value: str) -> list[str]:
    """Upstream's strict IP check: parseable, no leading zeros, not IPv4-mapped, canonical."""
    try:
        if "%" in value:
            raise ValueError(value)  # zones are not addresses
        addr = ipaddress.ip_address(value)
    except ValueError:
        # Go's lenient parser takes IPv4 octets with leading zeros; the strict one does not
        m = _DOTTED_V4.match(value)
        if m and all(int(o) <= 255 for o in m.groups()):
            return ["must not have leading 0s"]
        return [_IP_EXAMPLE]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return ["must not be an IPv4-mapped IPv6 address"]
    if str(addr) != value:
        return [f"must be in canonical form ({v.go_quote(str(addr))})"]
    return []


def cidr_errors(value: str) -> list[str]:
    """Upstream's strict CIDR check (subnet form: no host bits), then the canonical form."""
    ip_part, slash, bits = value.partition("/")
    if not slash or not bits.isdigit() or "%" in ip_part:
        return [_CIDR_EXAMPLE]
    try:
        addr = ipaddress.ip_address(ip_part)
    except ValueError:
        m = _DOTTED_V4.match(ip_part)
        if m and all(int(o) <= 255 for o in m.groups()) and int(bits) <= 32:
            return ["must not have leading 0s in IP or prefix length"]
        return [_CIDR_EXAMPLE]
    if int(bits) > addr.max_prefixlen:
        return [_CIDR_EXAMPLE]
    if len(bits) > 1 and bits.startswith("0"):
        return ["must not have leading 0s in IP or prefix length"]
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return ["must not have an IPv4-mapped IPv6 address"]
    net = ipaddress.ip_network(value, strict=False)
    if net.network_address != addr:
        return ["must not have bits set beyond the prefix length"]
    if str(net) != value:
        return [f"must be in canonical form ({v.go_quote(str(net))})"]
    return []


def _ip_name(name: str, prefix: bool = False) -> list[str]:
    return ip_errors(name)


def _path_segment(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


@strategy_for("networking.k8s.io", "servicecidrs")
class ServiceCIDRStrategy(Strategy):
    """Status is the status subresource's (wiped on create, kept on spec updates); spec.cidrs
    is fixed once set, except that a single-family range may gain its other family."""

    def validate_spec(self, obj):
        cidrs = (obj.get("spec") or {}).get("cidrs") or []
        return _cidrs_errors(cidrs)

    def validate_spec_update(self, new, old):
        ncidrs = (new.get("spec") or {}).get("cidrs") or []
        ocidrs = (old.get("spec") or {}).get("cidrs") or []
        if len(ncidrs) == len(ocidrs):
            return [v.invalid(f"spec.cidrs[{i}]", n, v.FIELD_IMMUTABLE_MESSAGE)
                    for i, (n, o) in enumerate(zip(ncidrs, ocidrs)) if n != o]
        if len(ocidrs) == 1 and len(ncidrs) == 2:
            if ncidrs[0] != ocidrs[0]:
                return [v.invalid("spec.cidrs[0]", ncidrs[0], v.FIELD_IMMUTABLE_MESSAGE)]
            return []  # the added family was checked by validate_spec
        return [v.invalid("spec.cidrs", ncidrs, v.FIELD_IMMUTABLE_MESSAGE)]


def _cidrs_errors(cidrs: list) -> list:
    path = "spec.cidrs"
    if not cidrs:
        return [v.required(path, "at least one CIDR required")]
    if len(cidrs) > 2:
        # upstream shows the whole (internal, untagged) spec struct as the value
        return [v.invalid(path, {"CIDRs": cidrs}, "may only hold up to 2 values")]
    errs = []
    for i, c in enumerate(cidrs):
        errs.extend(v.invalid(f"{path}[{i}]", c, msg) for msg in cidr_errors(c if isinstance(c, str) else ""))
    if len(cidrs) == 2 and not errs:
        fams = {ipaddress.ip_network(c).version for c in cidrs}
        if len(fams) == 1:
            errs.append(v.invalid(path, cidrs, "may specify no more than one IP for each IP family, "
                                               "i.e 192.168.0.0/24 and 2001:db8::/64"))
    return errs


@strategy_for("networking.k8s.io", "ipaddresses")
class IPAddressStrategy(Strategy):
    """The name is the address (canonical form); spec.parentRef says who holds it, for good."""
    name_validator = staticmethod(_ip_name)

    def validate_spec(self, obj):
        ref = (obj.get("spec") or {}).get("parentRef")
        path = "spec.parentRef"
        if not isinstance(ref, dict):
            return [v.required(path, "")]
        errs = []
        group = ref.get("group") or ""
        if group:  # the core group (Services) is the empty string, so it cannot be required
            errs.extend(v.invalid(f"{path}.group", group, m) for m in v.is_dns1123_subdomain(group))
        for key in ("resource", "name"):
            val = ref.get(key) or ""
            if not val:
                errs.append(v.required(f"{path}.{key}", ""))
            else:
                errs.extend(v.invalid(f"{path}.{key}", val, m) for m in _path_segment(val))
        if ref.get("namespace"):
            errs.extend(v.invalid(f"{path}.namespace", ref["namespace"], m) for m in _path_segment(ref["namespace"]))
        return errs

    def validate_spec_update(self, new, old):
        nref = (new.get("spec") or {}).get("parentRef")
        oref = (old.get("spec") or {}).get("parentRef")
        if nref != oref:
            shown = None
            if isinstance(nref, dict):  # as upstream prints its internal (untagged) struct
                shown = {k.capitalize(): nref.get(k, "") for k in ("group", "resource", "namespace", "name")}
            return [v.invalid("spec.parentRef", shown, v.FIELD_IMMUTABLE_MESSAGE)]
        return []
