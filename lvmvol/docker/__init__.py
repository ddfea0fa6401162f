"""The Docker volume plugin: ``lvmvol docker serve`` answers Docker's volume driver requests."""
