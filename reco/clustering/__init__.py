"""Grid-based neighbour search and DBSCAN kernels behind `cygno.reco.idbscan`."""
