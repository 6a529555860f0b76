"""JSON Schemas (draft 2020-12) of the scenario language v1 and of app profiles.

The schemas check shape only; `testbed.scenario.load` adds the checks across files (app
profiles, variants, actions, placeholders, referenced files). ``description`` of a
``pattern``/``enum`` schema doubles as the "expected ..." text of its error message.
"""

from __future__ import annotations

import copy
from typing import Any

from testbed.agent.verbs import VERBS
from testbed.run.events import TLS_OUTCOMES
from testbed.run.manifest import (
    CANARY_KINDS,
    CHAT_KINDS,
    DOWNLOAD_KINDS,
    MEDIA_KINDS,
    REACH_KINDS,
)

DIALECT = "https://json-schema.org/draft/2020-12/schema"

# ISO 3166-1 alpha-2, officially assigned codes, plus XK (Kosovo, used by GeoIP databases).
ISO_COUNTRIES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS XK YE YT ZA ZM ZW
    """.split()
)

NAME_PATTERN = "^[a-z0-9][a-z0-9._-]*$"
_NAME = {
    "type": "string",
    "pattern": NAME_PATTERN,
    "description": "a lower-case name (letters, digits, '.', '_', '-')",
}
_IDENT = {
    "type": "string",
    "pattern": "^[a-z_][a-z0-9_]*$",
    "description": "a lower-case identifier (letters, digits, '_')",
}
_ENV = {
    "type": "string",
    "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
    "description": "an environment variable name",
}
_TEXT = {"type": "string", "minLength": 1}

#: the trust store an app reads (app profile ``trust``): the system bundle (OpenSSL, GnuTLS),
#: an NSS database in its home, Java's, or its own (the gateway's CA cannot be put there)
TRUST_STORES = ("system", "nss", "java", "own")
OWN_TRUST = "own"
#: how the gateway treats a client's TLS (scenario client ``tls``)
CLIENT_TLS = ("intercept", "passthrough")

_SITE = {
    "type": "object",
    "description": "where a download ended: the host that served it",
    "properties": {"host": {"type": "string", "minLength": 1,
                            "description": "a host-name pattern, e.g. *.tom.*"}},
    "required": ["host"],
    "additionalProperties": False,
}
_PLACE = {
    "type": "object",
    "description": "a place an endpoint is in; several keys must all hold",
    "properties": {
        "country": {
            "type": "string",
            "enum": sorted(ISO_COUNTRIES),
            "description": "an ISO 3166-1 alpha-2 country code such as CN or GB",
        },
        "asn": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1,
                "description": "an autonomous system number"},
        "organization": {"type": "string", "minLength": 1,
                         "description": "part of the network's organisation name"},
        "network": {"type": "string", "minLength": 1,
                    "description": "a network in CIDR form, e.g. 203.0.113.0/24"},
        "host": {"type": "string", "minLength": 1,
                 "description": "a host-name pattern the endpoint was reached by, e.g. *.cn"},
    },
    "minProperties": 1,
    "additionalProperties": False,
}
_CHAT = {
    "type": "object",
    "description": "a chat message of the scenario: who sent it to whom, and a part of its text",
    "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                   "text_contains": {"type": "string", "minLength": 1}},
    "required": ["from", "to"],
    "additionalProperties": False,
}

_CALL = {
    "type": "object",
    "description": "a call of the scenario: who called whom (their `call` actions)",
    "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
    "required": ["from", "to"],
    "additionalProperties": False,
}

#: a route's shape is checked by testbed.scenario._route (its messages say what is expected)
_ROUTE = {"description": "how the traffic leaves the gateway: simulated, drop, "
                         "{vpn: {config: FILE}} or {internet: {uplink: IF, resolver: IP}}"}

_SCENARIO: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": "urn:testbed:scenario:v1",
    "title": "testbed scenario, version 1",
    "type": "object",
    "properties": {
        "scenario": _NAME,
        "version": {"const": 1},
        "description": {"type": "string"},
        "nightly": {"type": "boolean",
                    "description": "run by `testbed nightly` and compared with the last good run"},
        "provider": {"enum": ["lab", "vagrant"]},
        "route": _ROUTE,
        "lab": {
            "type": "object",
            "properties": {"internet": {**_TEXT, "description": "lab data file, relative path"}},
            "required": ["internet"],
            "additionalProperties": False,
        },
        "clients": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _NAME,
            "additionalProperties": {"$ref": "#/$defs/client"},
        },
        "sessions": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/session"}},
        "expectations": {"type": "array", "items": {"$ref": "#/$defs/expectation"}},
        "vagrant": {
            "type": "object",
            "description": "real VMs: the hypervisor and the management network (the "
                           "gateway is the lab's, on this host)",
            "properties": {
                "hypervisor": {"enum": ["libvirt", "virtualbox", "hyperv"]},
                "management_network": {"type": "string",
                                       "description": "CIDR of the host-only network "
                                                      "(default: a free 192.168.x.0/24)"},
            },
            "required": ["hypervisor"],
            "additionalProperties": False,
        },
    },
    "required": ["scenario", "version", "provider", "clients", "sessions"],
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"provider": {"const": "lab"}}, "required": ["provider"]},
         "then": {"required": ["lab"]}},
        {"if": {"properties": {"provider": {"const": "vagrant"}}, "required": ["provider"]},
         "then": {"required": ["vagrant"]}},
    ],
    "$defs": {
        "client": {
            "type": "object",
            "properties": {
                "app": {**_NAME, "description": "an app profile name (apps/<name>.yaml)"},
                "build": {**_TEXT, "description": "build profile file, relative path"},
                "profile": {**_TEXT, "description": "a folder, relative path: the app's "
                            "starting profile, copied into the guest's fresh home"},
                "route": _ROUTE,
                "tls": {"enum": list(CLIENT_TLS),
                        "description": "intercept (default) or passthrough: the gateway leaves "
                        "this client's TLS unopened"},
                "vm": {
                    "type": "object",
                    "description": "the guest of this variant on real VMs (provider vagrant)",
                    "properties": {
                        "box": _TEXT,
                        "os": {"enum": ["windows", "linux"]},
                        "communicator": {
                            "enum": ["ssh", "winssh", "winrm"],
                            "description": "how vagrant reaches the guest: ssh (Linux), "
                                           "winssh (Windows' OpenSSH; the default there) or "
                                           "winrm (needs vagrant's WinRM gems)"},
                        "cpus": {"type": "integer", "minimum": 1, "maximum": 256},
                        "memory": {"type": "integer", "minimum": 256, "maximum": 1 << 20,
                                   "description": "MiB"},
                        "installer": {
                            "type": "object",
                            "properties": {
                                "path": {**_TEXT, "description": "relative to the scenario"},
                                "url": _TEXT,
                                "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                "args": {"type": "array", "items": {"type": "string"},
                                         "description": "silent-install arguments"},
                            },
                            "required": ["sha256"],
                            "anyOf": [{"required": ["path"]}, {"required": ["url"]}],
                            "additionalProperties": False,
                        },
                    },
                    "required": ["box", "os"],
                    "additionalProperties": False,
                },
                "account": {
                    "type": "object",
                    "properties": {"user": _TEXT, "password_env": _ENV},
                    "required": ["user"],
                    "additionalProperties": False,
                },
            },
            "required": ["app", "account"],
            "additionalProperties": False,
        },
        "session": {
            "type": "object",
            "properties": {
                "name": _TEXT,
                "parallel": {"type": "boolean"},
                "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
            },
            "required": ["name", "steps"],
            "additionalProperties": False,
        },
        "step": {
            "type": "object",
            "description": "variant and action, plus string parameters (to, from, text, ...)",
            "properties": {"variant": {"type": "string"}, "action": {"type": "string"}},
            "required": ["variant", "action"],
            "propertyNames": _IDENT,
            "additionalProperties": {"type": "string"},
        },
        "expectation": {
            "type": "object",
            "description": "a claim: a variant reaches / never reaches / only reaches places, "
            "its canary reaches / never reaches a place, "
            "or a chat message passes / does not pass through a place, is / is not delivered",
            "properties": {
                "variant": {"type": "string"},
                "chat": _CHAT,
                "call": _CALL,
                "id": _NAME,
                "description": {"type": "string"},
                "min_strength": {
                    "enum": ["weak", "strong"],
                    "description": "the weakest evidence that counts: weak (timing) or strong "
                    "(canary, observed flows); default weak for chats",
                },
                "reaches": _PLACE,
                "never_reaches": _PLACE,
                "only_reaches": {"type": "array", "minItems": 1, "items": _PLACE},
                "passes_through": _PLACE,
                "does_not_pass_through": _PLACE,
                "media_passes_through": _PLACE,
                "media_does_not_pass_through": _PLACE,
                "delivered": {"const": True},
                "not_delivered": {"const": True},
                "canary_reaches": {**_PLACE, "description": "the run's canary, typed by the "
                                   "variant, shows up in its traffic to the place"},
                "canary_never_reaches": {**_PLACE, "description": "the run's canary, typed by "
                                         "the variant, never shows up in its traffic to the "
                                         "place"},
                "download": {**_TEXT, "description": "download claims: the URL the variant "
                             "asked for (default: every download the variant made)"},
                "redirected_to": {**_SITE, "description": "the variant's download was "
                                  "redirected to a host matching the pattern"},
                "not_redirected_to": {**_SITE, "description": "the variant's download was not "
                                      "redirected to a host matching the pattern"},
                "served": {
                    "type": "object",
                    "description": "the variant's download was served a body of this sha256",
                    "properties": {"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                    "required": ["sha256"],
                    "additionalProperties": False,
                },
                "tls": {"enum": list(TLS_OUTCOMES),
                        "description": "the TLS outcome expected of the variant's connections "
                        "(e.g. untrusted for an app that brings its own trust store)"},
            },
            "additionalProperties": False,
            "oneOf": [{"required": [k]} for k in (*REACH_KINDS, *CHAT_KINDS, *CANARY_KINDS,
                                                      *MEDIA_KINDS, *DOWNLOAD_KINDS)],
            "allOf": [
                {"if": {"anyOf": [{"required": [k]} for k in (*REACH_KINDS, *CANARY_KINDS,
                                                              *DOWNLOAD_KINDS)]},
                 "then": {"required": ["variant"]}},
                {"if": {"anyOf": [{"required": [k]} for k in CHAT_KINDS]},
                 "then": {"required": ["chat"]}},
                {"if": {"anyOf": [{"required": [k]} for k in MEDIA_KINDS]},
                 "then": {"required": ["call"]}},
            ],
        },
    },
}

MAX_SECONDS = 3600  # a step's timeout or sleep: at most an hour
_SECONDS = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SECONDS}
_OFFSET = {"type": "integer", "minimum": -10_000, "maximum": 10_000,
           "description": "pixels"}
_CONFIDENCE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}


def _verb(verb: str, value: dict[str, Any], **options: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {verb: value, **options},
        "required": [verb],
        "additionalProperties": False,
    }


_APP_STEP = {
    "type": "object",
    "description": "exactly one of " + ", ".join(VERBS),
    "oneOf": [
        _verb("run", {"oneOf": [_TEXT, {"type": "array", "minItems": 1, "items": _TEXT}]}),
        _verb(
            "click_image",
            _TEXT,
            confidence=_CONFIDENCE,
            offset={
                "type": "array",
                "prefixItems": [_OFFSET, _OFFSET],
                "minItems": 2,
                "maxItems": 2,
            },
            timeout=_SECONDS,
        ),
        _verb("wait_image", _TEXT, timeout=_SECONDS, confidence=_CONFIDENCE),
        _verb("absent_image", _TEXT, timeout=_SECONDS, confidence=_CONFIDENCE),
        _verb("wait_window", _TEXT, timeout=_SECONDS),
        _verb("type", {"type": "string"}, secret={"type": "boolean"}),
        _verb("press", _TEXT),
        _verb("hotkey", {"type": "array", "minItems": 1, "items": _TEXT}),
        _verb("screenshot", _NAME),
        _verb("sleep", {"type": "number", "minimum": 0, "maximum": MAX_SECONDS}),
        _verb("download", _TEXT, timeout=_SECONDS),
    ],
}

_APP: dict[str, Any] = {
    "$schema": DIALECT,
    "$id": "urn:testbed:app-profile:v1",
    "title": "testbed app profile",
    "type": "object",
    "properties": {
        "app": {**_NAME, "description": "the profile's name, same as its file name"},
        "description": {"type": "string"},
        "images": {**_TEXT, "description": "folder of reference images, relative path"},
        "trust": {"enum": list(TRUST_STORES),
                  "description": "the trust store the app reads: system, nss, java or own"},
        "nss_db": {"type": "string", "pattern": r"^(?!/)(?!.*(^|/)\.\.(/|$)).+$",
                   "description": "where in the guest's home the app keeps its own NSS "
                                  "database (a folder, relative to the home), when it does not "
                                  "read ~/.pki/nssdb: the lab's CAs go there too"},
        "launch": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "actions": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": _IDENT,
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/step"},
            },
        },
    },
    "required": ["app", "launch", "actions"],
    "additionalProperties": False,
    "$defs": {"step": _APP_STEP},
}

def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file (a fresh copy)."""
    return copy.deepcopy(_SCENARIO)


def app_profile_schema() -> dict[str, Any]:
    """The JSON Schema of an app profile file (a fresh copy)."""
    return copy.deepcopy(_APP)
