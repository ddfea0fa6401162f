"""The Docker volume plugin: ``lvmvol docker serve`` handles Docker's volume driver requests."""

# Socket path at which dockerd looks for the volume driver "lvmvol".
DEFAULT_SOCKET = "/run/docker/plugins/lvmvol.sock"
# A tmpfs, so a reboot clears the saved mount IDs together with the mounts.
DEFAULT_STATE_DIR = "/run/lvmvol"
