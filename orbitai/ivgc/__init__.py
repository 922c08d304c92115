"""IVGCResponse: predict the response to intravenous glucocorticoids from orbital T2 MRI (paper 001)."""
