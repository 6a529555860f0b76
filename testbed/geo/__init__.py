"""The ``testbed geo`` commands: look addresses up in several databases, update them.

- `testbed.geo.lookup`: `testbed geo lookup ADDRESS...` (bundled databases by default).
- `testbed.geo.update`: `testbed geo update` (DB-IP City Lite; GeoLite2 with a key).

The databases' licences require attribution: see ATTRIBUTION.md beside this file.
"""
