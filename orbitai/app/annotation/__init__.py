"""The annotation effects' logic (SmartPencil, SmartFill, AutoCorrection): options, segment editors and
`AnnotationLogic`, used by the Segment Editor effects in Slicer and by the browser's annotation panel."""
