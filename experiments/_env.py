"""Environment variables the project reads, named once (the CLI's help and the backends share them)."""

STORAGE_ENV = "KATIB_STORAGE"  # the local backend's storage URL when --storage is not given
