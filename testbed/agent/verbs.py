"""The step verbs of an app profile and their default timeout, defined once: the agent runs
them (``steps``), the scenario schema accepts them, the orchestrator and pre-flight find the
reference images they name. Standard library only: this module also runs inside the guests."""

IMAGE_VERBS = ("click_image", "wait_image", "absent_image")  # each names a reference image
VERBS = ("run", *IMAGE_VERBS, "wait_window", "type", "press", "hotkey", "screenshot", "sleep",
         "download")
TIMED_VERBS = (*IMAGE_VERBS, "wait_window", "download")  # verbs that wait up to their ``timeout``
DEFAULT_TIMEOUT = 10.0  # seconds an image step waits when it names no timeout
