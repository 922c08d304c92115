"""The orbit segmentation networks: SV-net, SU-net and V-Net (`svnet`), SEQ-UNET (`sequnet`), and the 2D ones applied
to a volume (`volume_wrappers`); registered by name with `orbitai.models` when the task is imported."""
