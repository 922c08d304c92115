"""The phantom scans of the web tests' data folder (one per kind, seed `SEED`), by kind: their paths inside it."""
PHANTOMS = {"orbit-ct": "orbit-ct/images/orbit_ct_0000.nrrd", "tao": "tao/images/tao_0000.nrrd",
            "brain-flair": "brain-flair/images/brain_flair_0000.nrrd"}
SEED = 7
