"""The browser front end of OrbitAI (``orbitai web``): the four modules and the annotation tools in a trame-slicer app.

trame-slicer (Kitware) runs Slicer's own MRML scene, slice views and segment editor on the ``slicer-core`` wheel in a
trame server; the views reach the browser as images. This package adds a second *view* of the objects the Slicer
panels drive -- `orbitai.mrml.panel.JobController` over each module's `JobLogic`, and `AnnotationLogic` over the
segment editor -- not a second copy of the workflow:

* `app` builds the server: the scene, the views, the panels and the page; it is the rooms' one composition root;
* `host` is the seam: the `WebHost` Protocol every room is built on, and the signals the app connects between rooms;
* `loading` loads scans: DATA's list, DICOMweb series, uploads (`uploads`: each bounded, removed after);
* `segments` keeps the shown scan's results visible and lists its segments;
* `module_panel` is a module's panel on the page, made from its `PanelSpec`;
* `panel` is the `JobView` of a module panel, written into trame state, and its poll loop;
* `modules` declares what differs between the four modules (their options, tables and displays);
* `annotate` is the annotation panel: the `Editor` of `AnnotationLogic` on trame-slicer's segment editor;
* `compat` works around defects of the pinned trame-slicer;
* `names` is the rule for what a client names (a file name is a name; a path lies under DATA);
* `guard` is the server's gate (Host and Origin, the per-start secret, message and upload limits);
* `cli` is ``orbitai web``; `launch` its launch's phases (the address printed before the app is built).

trame and trame-slicer are imported only here (the optional extra ``orbitai[web]``).
"""
