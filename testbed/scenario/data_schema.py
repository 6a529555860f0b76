"""JSON Schemas (draft 2020-12) of the lab's data files: the simulated internet
(``lab/internet-*.yaml``) and reference-client build profiles (``lab/builds/*.yaml``).

Shape only, like `testbed.scenario.schema`; `testbed.scenario._data` adds what a schema
cannot say (addresses in the lab's blocks, unique names, files that exist in the tree).
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from testbed.scenario.schema import DIALECT, ISO_COUNTRIES, app_profile_schema, scenario_schema

LAB_BLOCKS = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
                                      "2001:db8::/32")
)
"""The documentation blocks the simulated internet answers on; never real public addresses."""

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_PATTERN = rf"^{_LABEL}(\.{_LABEL})*$"
_HOST = {"type": "string", "pattern": HOST_PATTERN,
         "description": "a DNS name (letters, digits, '-', dot-separated labels)"}
_TEXT = {"type": "string", "minLength": 1}
_COUNTRY = {"type": "string", "enum": sorted(ISO_COUNTRIES),
            "description": "an ISO 3166-1 alpha-2 country code such as CN or GB"}
_BUILDS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_WORDS = {"type": "array", "items": _TEXT}
PROTOS = ("tls", "http", "udp", "ssdp")
URL_PATTERN = r"^(tls|https|http|udp|ssdp)://[^\s/]+(/\S*)?$"
EXECUTABLE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$"
DAEMON_PLACEHOLDERS = {
    "address": "the row's address",
    "name": "the row's DNS name",
    "cert": "the certificate the lab CA issued for the row's names (PEM)",
    "key": "its private key (PEM)",
    "ca": "the lab CA's certificate (PEM), to verify other lab servers",
    "config": "the folder the daemon's files are rendered into",
    "data": "a folder of the run, the daemon's own, writable",
    "logs": "a folder of the run for the daemon's log files",
}
"""What a daemon's command and files may say in ``{name}`` placeholders."""
_DAEMON = {
    "type": "object",
    "description": "real server software run on the row's address (docs/internet-daemons.md)",
    "properties": {
        "command": {
            "type": "array", "minItems": 1,
            "prefixItems": [{"type": "string", "pattern": EXECUTABLE_PATTERN,
                             "description": "an executable name found on PATH (no path, "
                                            "no shell), such as nginx"}],
            "items": {"type": "string"},
        },
        "files": {"type": "array", "items": _TEXT,
                  "description": "config files, relative to the data file, rendered into "
                                 "{config} with their placeholders filled in"},
        "ready": {"type": "integer", "minimum": 1, "maximum": 65535,
                  "description": "the TCP port that answers once the daemon is up"},
        "ready_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 100,
                          "description": "how long it may take to answer (the gateway's "
                                         "set-up has 120 s in all)"},
        "names": {"type": "array", "items": _HOST,
                  "description": "more DNS names of the row (resolved, in its certificate)"},
    },
    "required": ["command", "ready"],
    "additionalProperties": False,
}
_URL = {"type": "string", "pattern": URL_PATTERN,
        "description": "a contact URL such as tls://name:443/path, http://..., udp://name:3478"}

_INTERNET: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": "urn:testbed:internet:v1",
    "title": "the lab's simulated internet",
    "type": "object",
    "properties": {
        "internet": _TEXT,
        "description": {"type": "string"},
        "keywords": {
            "type": "object",
            "properties": {"monitor": _WORDS, "censor": _WORDS},
            "additionalProperties": False,
        },
        "tls": {
            "type": "object",
            "description": "the certificate every lab server presents: {cert, key} files",
            "properties": {"cert": _TEXT, "key": _TEXT},
            "required": ["cert", "key"],
            "additionalProperties": False,
        },
        "countries": {
            "type": "object",
            "description": "country code -> country name",
            "propertyNames": _COUNTRY,
            "additionalProperties": _TEXT,
        },
        "servers": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/server"}},
        "special": {"type": "array", "items": {"$ref": "#/$defs/special"}},
    },
    "required": ["internet", "servers"],
    "additionalProperties": False,
    "$defs": {
        "server": {
            "type": "object",
            "properties": {
                "address": {**_TEXT, "description": "a lab address (documentation block)"},
                "name": _HOST,
                "country": _COUNTRY,
                "stands_for": {**_TEXT, "description": "the real address it stands for (none "
                               "for a lab-only site, e.g. a download site)"},
                "builds": {"type": "integer", "minimum": 0, "maximum": 1000},
                "contacted_by": _BUILDS,
                "proto": {"enum": list(PROTOS)},
                "role": {"type": "string"},
                "daemon": _DAEMON,
                "exit": {
                    "type": "object",
                    "description": "a lab VPN exit on the row's address (docs/routes.md): the "
                                   "exit's own WireGuard config",
                    "properties": {"wireguard": {**_TEXT, "description": "relative path"}},
                    "required": ["wireguard"],
                    "additionalProperties": False,
                },
                "redirects": {
                    "type": "object",
                    "description": "country code -> host: a client whose egress address the map "
                    "places in that country is redirected to the same path on that host",
                    "propertyNames": _COUNTRY,
                    "additionalProperties": _HOST,
                },
            },
            "required": ["address", "name", "country", "builds", "contacted_by"],
            "additionalProperties": False,
        },
        "special": {
            "type": "object",
            "description": "an address that is not a server (multicast, ...): never placed",
            "properties": {
                "address": _TEXT,
                "kind": _TEXT,
                "contacted_by": _BUILDS,
                "note": {"type": "string"},
                "article_country": {"type": "string"},
                "builds": {"type": "integer", "minimum": 0, "maximum": 1000},
                "proto": {"enum": list(PROTOS)},
            },
            "required": ["address", "kind"],
            # other keys annotate the row (recorded runs hold rows with extra notes)
        },
    },
}

_BUILD: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": "urn:testbed:build:v1",
    "title": "a reference-client build profile",
    "type": "object",
    "properties": {
        "build": _TEXT,
        "product": _TEXT,
        "version": {"type": ["string", "number"]},
        "language": _TEXT,
        "title": _TEXT,
        "launch": {"type": "array", "items": _URL},
        "login": {"type": "array", "items": _URL},
        "chat": {
            "type": "object",
            "properties": {"relay": _URL,
                           "presence_every": {"type": "number", "exclusiveMinimum": 0,
                                              "maximum": 3600}},
            "additionalProperties": False,
        },
        "call": {
            "type": "object",
            "properties": {"media_relay": _URL,
                           "packets_per_second": {"type": "integer", "minimum": 1,
                                                  "maximum": 1000}},
            "additionalProperties": False,
        },
        "surveillance": {
            "type": "object",
            "properties": {"keywords": _URL, "upload": _URL,
                           "accounts": {"type": "array", "items": _TEXT}},
            "additionalProperties": False,
        },
        "pin": {
            "type": "object",
            "description": "host -> certificate file the build pins (relative to the profile)",
            "propertyNames": _HOST,
            "additionalProperties": _TEXT,
        },
        "theme": {"enum": ["classic", "modern"]},
    },
    "required": ["build", "product", "version"],
    "additionalProperties": False,
}


def internet_schema() -> dict[str, Any]:
    """The JSON Schema of an internet data file (a fresh copy)."""
    return copy.deepcopy(_INTERNET)


def build_schema() -> dict[str, Any]:
    """The JSON Schema of a build profile (a fresh copy)."""
    return copy.deepcopy(_BUILD)


KINDS = ("scenario", "app", "internet", "build")


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of one of ``KINDS``; raises KeyError for other kinds."""
    return {"scenario": scenario_schema, "app": app_profile_schema,
            "internet": internet_schema, "build": build_schema}[kind]()
