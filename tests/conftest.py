"""tests/data holds recorded runs: inputs of tests, not runs for the verdicts plugin to judge
(collecting them would write a verdicts.json into the recorded data)."""

collect_ignore = ["data"]
