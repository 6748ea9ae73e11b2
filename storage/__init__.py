"""Storage library: MIDAS files, checksums, object store, tape, catalog, DAQ logbook."""
