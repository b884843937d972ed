"""File formats: Dragonfly sparse photons (.emc), CXI (HDF5), MRC/MRCS, PDB atoms."""
