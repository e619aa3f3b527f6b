import os

# Partitions are defined at import time from the environment: the tests' simulated days (November 2026) must be
# inside the partition range whatever the developer's environment says.
os.environ["COMPLIANCE_PARTITIONS_START"] = "2026-10-01T00:00:00Z"
# Tests build their own resources; never let a developer's real key or URL leak into a test run.
os.environ.pop("ANTHROPIC_COMPLIANCE_ACCESS_KEY", None)
os.environ.pop("COMPLIANCE_API_BASE_URL", None)
