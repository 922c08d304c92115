/* OrbitAI web app: the page tells the server when it has drawn its first slice (issue 81, a launch in seconds).

At a launch the server holds back what the first frame does not need (the scan's annotation preparation, its whole
resolution: OrbitWebApp.launch_done in orbitai/web/app.py) until the page has drawn the launch's scan, so that the page
has the cores to itself while it decodes and draws it. Polls static/orbitai_slices.js's frame counters and sends
`orbitai_first_frame` once.
*/
(function () {
  'use strict';
  if (window.orbitaiLaunch) return;        // loaded twice (a page script added again): the first copy stays
  window.orbitaiLaunch = true;
  const poll = setInterval(() => {
    const S = window.orbitaiSlices, T = window.trame;
    if (!S || !T || !T.trigger || !Object.values(S.frames || {}).some((n) => n > 0)) return;
    clearInterval(poll);
    T.trigger('orbitai_first_frame', []);
  }, 50);
})();
