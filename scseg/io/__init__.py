"""Reading and naming files: volumes (NIfTI, NRRD; :mod:`~scseg.io.volumes`), DICOM series
(:mod:`~scseg.io.dicom`), NRRD geometry (:mod:`~scseg.io.nrrd`) and 2D images and masks
(:mod:`~scseg.io.images`). The bottom of the house: it imports nothing else of scseg."""
