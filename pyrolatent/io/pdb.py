"""Atoms of a PDB file (fixed-column ``ATOM``/``HETATM`` records), for diffraction simulations."""

from __future__ import annotations

import numpy as np

__all__ = ["read_pdb_atoms"]

_Z = {"H": 1, "C": 6, "N": 7, "O": 8, "NA": 11, "MG": 12, "P": 15, "S": 16, "CL": 17,
      "K": 19, "CA": 20, "MN": 25, "FE": 26, "CO": 27, "NI": 28, "CU": 29, "ZN": 30,
      "SE": 34, "BR": 35, "I": 53, "PT": 78, "AU": 79, "HG": 80}  # fmt: skip


def read_pdb_atoms(path: str, hetatm: bool = False, hydrogens: bool = False):
    """Coordinates and atomic numbers of the atoms of a PDB file (first model only).

    Parameters
    ----------
    path : str
        ``.pdb`` file.
    hetatm : bool
        Include ``HETATM`` records (ligands, water).
    hydrogens : bool
        Include hydrogen atoms.

    Returns
    -------
    positions : numpy.ndarray
        ``(A, 3)`` float64 angstrom, ``(x, y, z)``.
    atomic_numbers : numpy.ndarray
        ``(A,)`` int (6 for unknown elements).

    Raises
    ------
    ValueError
        No atoms found.
    """
    pos, z = [], []
    kinds = ("ATOM  ", "HETATM") if hetatm else ("ATOM  ",)
    with open(path) as fh:
        for line in fh:
            if line.startswith("ENDMDL"):
                break
            if not line.startswith(kinds):
                continue
            element = line[76:78].strip().upper() or line[12:14].strip().upper().lstrip(
                "0123456789"
            )
            if element == "H" and not hydrogens:
                continue
            pos.append((float(line[30:38]), float(line[38:46]), float(line[46:54])))
            z.append(_Z.get(element, 6))
    if not pos:
        raise ValueError(f"{path}: no ATOM records found")
    return np.asarray(pos, dtype=np.float64), np.asarray(z, dtype=np.int64)
