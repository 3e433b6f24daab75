#!/usr/bin/env python3
"""Writes the compatible-tag lists that `packaging.tags` gives for a target interpreter and platform, in priority
order, one tag per line: the oracle for hstore's `requirements::tags` unit test (model/tests/data/tags-*.txt).

Usage: python3 scripts/gen-python-tags.py 3.10 manylinux_2_28_aarch64 > model/tests/data/tags-cp310-manylinux_2_28_aarch64.txt
Needs `pip install packaging` (generated with packaging 26.4). The host's glibc, architecture and musl are replaced by
the target's, so the list is the one a real machine of that platform computes (sys_tags minus musllinux).
"""
import sys

from packaging import _manylinux, _musllinux, tags

version = tuple(int(part) for part in sys.argv[1].split("."))
platform = sys.argv[2]
prefix, major, minor, arch = platform.split("_", 3)
assert prefix == "manylinux", platform

_manylinux._get_glibc_version = lambda: (int(major), int(minor))
_manylinux._have_compatible_abi = lambda executable, archs: True
_musllinux._get_musl_version = lambda executable: None
tags._get_config_var = lambda name, warn=False: None
platforms = list(_manylinux.platform_tags([arch])) + [f"linux_{arch}"]
interpreter = f"cp{version[0]}{version[1]}"
for tag in tags.cpython_tags(version, [interpreter], platforms):
    print(tag)
for tag in tags.compatible_tags(version, interpreter, platforms):
    print(tag)
