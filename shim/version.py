"""The Kubernetes version this server presents itself as."""
KUBE_VERSION = "v1.37.2"
MAJOR, MINOR = "1", "37"


def version_info() -> dict:
    return {"major": MAJOR, "minor": MINOR, "emulationMajor": MAJOR, "emulationMinor": MINOR,
            "minCompatibilityMajor": MAJOR, "minCompatibilityMinor": str(int(MINOR) - 1),
            "gitVersion": KUBE_VERSION, "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean", "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.26.8",
            "compiler": "gc", "platform": "linux/amd64"}
