"""TAO activity (paper 000): active vs inactive thyroid-associated ophthalmopathy per eye on axial
orbital T2 MRI — preprocessing, Networks A/B training, prediction with occlusion and Grad-CAM maps."""
