"""What every run kind (TE-NAS, EAS, zero-cost) does with its run folder ``runs/<name>/``.

`folder`: the folder, its config snapshot, ``result.json`` and its errors;
`files`: atomic writes; `settings`: the resume comparison; `report`: progress
bars and TensorBoard; `export`: the exported network and `load_exported`.
A search package imports these, never another search package.
"""
