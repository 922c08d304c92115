"""Explanation maps for any classifier ``model(x) -> logits`` on (N, C, H, W) or (N, C, D, H, W) input:
occlusion sensitivity (paper 000: a grey patch slid over the input, the drop in the class probability)
and Grad-CAM. Both return a map over the input's spatial grid; mapping it onto a volume's geometry is
the caller's (e.g. :meth:`orbitai.tao.preprocess.EyeCrop.map_to_input`)."""
from orbitai.explain.gradcam import grad_cam
from orbitai.explain.occlusion import occlusion_map, occlusion_map_loop

__all__ = ["grad_cam", "occlusion_map", "occlusion_map_loop"]
