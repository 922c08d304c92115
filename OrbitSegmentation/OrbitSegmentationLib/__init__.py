"""Slicer shell of the OrbitSegmentation module: registering the annotation effects with the Segment Editor.
The module's Logic and the effects' logic live in the package (`orbitai.app.orbit_segmentation`,
`orbitai.app.annotation`)."""
