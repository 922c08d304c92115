"""NeuroDifferential (paper 003): white-matter lesions on brain FLAIR and NMOSD vs multiple sclerosis."""
