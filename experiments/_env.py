"""Environment variables the project reads, named once (the CLI's help and the backends share them)."""

STORAGE_ENV = "KATIB_STORAGE"  # the local backend's storage URL when --storage is not given
WARM_START_ENV = "KATIB_WARM_START"  # "0" stops the local backend forking trial processes from a warm trainer
